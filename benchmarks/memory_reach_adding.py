"""Memory reach on the adding problem: how far back a trained RNN, GRU and LSTM still listen.

Races the cells with the ``lstmlens longrange adding`` recipe (hidden 64, batch 32, Adam
lr 3e-2, gradient clip 1, same batches for every cell; the LSTM's forget gate starts as
``--forget-init``) at ``--length`` T, each stopping at test MSE < 0.01 or after ``--steps``,
and saves the race as a run folder in ``--out`` (what ``lstmlens longrange adding --out``
writes). The page is then made from that folder exactly as ``lstmlens inspect OUT --compare
--html PAGE`` makes it (:func:`lstmlens.lens.compare.compare_runs`: the median over 50 test
sequences of reach_k / reach_0 at t = T - 1, float64), and its table is printed.

Two diagnostics follow, on the same sequences: the median of reach_k / reach_0 at the
first *marked* step (the value the answer needs, lag ``k = T - 1 - t1`` in ``T/2..T-1``),
and the share of reach_0 that the value and the marker channel carry at the last step.

    nice .venv/bin/python benchmarks/memory_reach_adding.py [--length 100] [--steps 3000]
        [--cells rnn,gru,lstm] [--forget-init chrono] [--seed 0] [--full]
        [--out runs/reach-adding] [--html docs/memory_reach.html]

An existing ``--out`` folder is reused (not retrained); pass ``--force`` to race again.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from lstmlens import load_run
from lstmlens.lens.compare import compare_runs
from lstmlens.tasks.longrange import make_task
from lstmlens.tasks.longrange_compare import FORGET_INITS, CompareConfig, format_table
from lstmlens.tasks.longrange_run import race

SEQUENCES = 50  # what compare_runs reads per raced cell (its default)


def page_table(page: str) -> dict[str, list[str]]:
    """The reach table of a comparison page: model -> its cells after the name."""
    table = page.split('id="reach-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", table)
    return {name: re.findall(r"<td>([^<]*)</td>", cells) for name, cells in rows}


def diagnostics(model: torch.nn.Module, xs: torch.Tensor) -> tuple[float, float, float]:
    """Median over ``xs`` (N, T, 2) of reach at the first marked step / reach_0, and of the
    value and marker channels' share of reach_0 (float64, the top layer's output)."""
    rnn = copy.deepcopy(model.rnn).double()
    marked, value, marker = [], [], []
    for x in xs.double():
        seq = x[None].clone().requires_grad_(True)  # (1, T, 2)
        out, _ = rnn(seq)
        last = out.shape[1] - 1
        rows = [
            torch.autograd.grad(out[0, last, d], seq, retain_graph=True)[0][0]
            for d in range(out.shape[-1])
        ]
        jac = torch.stack(rows)  # (D, T, 2): d y_last[d] / d x_s[c]
        reach_0 = jac[:, last].norm()
        first = int(torch.nonzero(x[:, 1])[0])
        marked.append(float(jac[:, first].norm() / reach_0))
        value.append(float(jac[:, last, 0].norm() / reach_0))
        marker.append(float(jac[:, last, 1].norm() / reach_0))
    return float(np.median(marked)), float(np.median(value)), float(np.median(marker))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--lr", type=float, default=3e-2, help="Adam's learning rate (3e-2)")
    p.add_argument("--forget-init", choices=FORGET_INITS, default="chrono")
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
        show = lambda cell, r: print(
            f"{cell:>5} step {int(r['step']):>5}  test {r['test_loss']:.4g}"
        )  # noqa: E731
        results = race(task, {}, args.cells.split(","), config, show, args.out)
        print(format_table(task, results))
    models, config = load_run(args.out)
    page = compare_runs([args.out], args.html).read_text(encoding="utf-8")
    compare = config["compare"]
    print(
        f"\nadding problem, T = {args.length}, forget init {compare.get('forget_init', 'constant')}"
        f", seed {compare['seed']}: the page {args.html} made from {args.out} (median over "
        f"{SEQUENCES} test sequences of reach_k / reach_0 at t = T - 1, float64)"
    )
    table = page_table(page)
    head = page.split('id="reach-table"')[1].split("</tr>")[0]
    print("| " + " | ".join(re.findall(r"<th>([^<]*)</th>", head)) + " |")
    print("|---" * (len(next(iter(table.values()))) + 1) + "|")
    for name, cells in table.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    xs = task.sample(SEQUENCES, torch.Generator().manual_seed(0)).inputs  # the page's sequences
    print("\n| cell | reach at the first marked step / reach_0 | value / marker share of reach_0 |")
    print("|---|---|---|")
    for cell, model in models.items():
        marked, value, marker = diagnostics(model, xs)
        print(f"| {cell} | {marked:.2e} | {value:.2f} / {marker:.2f} |")


if __name__ == "__main__":
    main()
