"""Memory reach on the adding problem: how far back a trained RNN, GRU and LSTM still listen.

Races the cells with the ``lstmlens longrange adding`` recipe (hidden 64, batch 32, Adam
lr 3e-2, gradient clip 1, same batches for every cell; the LSTM's forget gate starts as
``--forget-init``, by default as the CLI's: a constant bias of 1) at ``--length`` T, each
stopping at test MSE < 0.01 or after ``--steps``, and saves the race as a run folder in
``--out`` (what ``lstmlens longrange adding --out`` writes); ``--out`` may also name a folder
that command wrote. The page is then made from that folder exactly as ``lstmlens inspect OUT
--compare --html PAGE`` makes it (:func:`lstmlens.lens.compare.compare_runs`: 50 test
sequences, t = T - 1, float64), and its three tables are printed
(:mod:`lstmlens.lens.compare_measures`):

- ``reach-table``: the median over the sequences of reach_k / reach_0 (every input);
- ``marked-table``: the reach to the two marked inputs, the median of the marked values
  whose lag is within 5 steps of k;
- ``path-table``: the memory path ||dm_t / dm_(t-k)|| / sqrt(H) (m = c for the LSTM, h for
  the GRU and the RNN).

Issue 15's goal (the RNN's reach below 1e-3 of its lag-0 value within 30 steps, the LSTM's
above 1e-1 at k = 90) is read from each table on the ``goal:`` lines.

    nice .venv/bin/python benchmarks/memory_reach_adding.py [--length 100] [--steps 3000]
        [--cells rnn,gru,lstm] [--forget-init constant|chrono] [--seed 0] [--full]
        [--out runs/reach-adding] [--html memory_reach.html]

An existing ``--out`` folder is reused (not retrained); pass ``--force`` to race again.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import torch

from lstmlens import load_run
from lstmlens.lens.compare import compare_runs
from lstmlens.tasks.longrange import make_task
from lstmlens.tasks.longrange_compare import FORGET_INITS, CompareConfig, format_table
from lstmlens.tasks.longrange_run import race

SEQUENCES = 50  # what compare_runs reads per raced cell (its default)
TABLES = ("reach-table", "marked-table", "path-table")


def page_tables(page: str) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """The page's reach tables: id -> (header, model -> its cells after the name)."""
    out = {}
    for table_id in TABLES:
        if f'id="{table_id}"' not in page:
            continue
        table = page.split(f'id="{table_id}"')[1].split("</table>")[0]
        head = re.findall(r"<th>([^<]*)</th>", table)
        rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", table)
        out[table_id] = (head, {n: re.findall(r"<td>([^<]*)</td>", c) for n, c in rows})
    return out


def goal(head: list[str], cells: dict[str, list[str]]) -> str:
    """Issue 15's goal read from one table: RNN < 1e-3 at k = 30, LSTM > 1e-1 at k = 90."""
    column = {h: i - 1 for i, h in enumerate(head)}  # a row's cells start after the name

    def value(name: str, k: int) -> float:
        return float(cells[name][column[f"k = {k}"]] or "nan")

    parts = []
    for name in cells:
        if name.endswith("/rnn"):
            v = value(name, 30)
            parts.append(f"{name} k=30 {v:.2e} ({'<' if v < 1e-3 else 'NOT <'} 1e-3)")
        if name.endswith("/lstm"):
            v = value(name, 90)
            parts.append(f"{name} k=90 {v:.2e} ({'>' if v > 1e-1 else 'NOT >'} 1e-1)")
    return "; ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--lr", type=float, default=3e-2, help="Adam's learning rate (3e-2)")
    p.add_argument("--forget-init", choices=FORGET_INITS, default="constant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full", action="store_true", help="train all --steps, even once solved")
    p.add_argument("--out", type=Path, default=Path("runs/reach-adding"))
    p.add_argument("--force", action="store_true", help="race again into an existing --out")
    p.add_argument("--html", type=Path, default=Path("memory_reach.html"))
    args = p.parse_args()
    torch.set_num_threads(1)
    task = make_task("adding", args.length)
    if args.force and args.out.exists():
        shutil.rmtree(args.out)
    if not (args.out / "config.json").exists():
        config = CompareConfig(
            steps=args.steps,
            lr=args.lr,
            seed=args.seed,
            forget_init=args.forget_init,
            stop_when_solved=not args.full,
        )

        def show(cell: str, r: dict[str, float]) -> None:
            print(f"{cell:>5} step {int(r['step']):>5}  test {r['test_loss']:.4g}")

        results = race(task, {}, args.cells.split(","), config, show, args.out)
        print(format_table(task, results))
    compare = load_run(args.out)[1]["compare"]
    page = compare_runs([args.out], args.html).read_text(encoding="utf-8")
    print(
        f"\nadding problem, T = {compare.get('length', args.length)}, forget init "
        f"{compare.get('forget_init', 'constant')}, seed {compare['seed']}: the page "
        f"{args.html} made from {args.out} ({SEQUENCES} test sequences, t = T - 1, float64)"
    )
    for table_id, (head, cells) in page_tables(page).items():
        print(f"\n{table_id}\n| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|")
        for name, row in cells.items():
            print(f"| {name} | " + " | ".join(row) + " |")
        if any(f"k = {k}" in head for k in (30, 90)) and "k = 90" in head:
            print("goal: " + goal(head, cells))


if __name__ == "__main__":
    main()
