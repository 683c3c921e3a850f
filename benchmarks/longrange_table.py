"""The long-range headline: race cells on a task and time the whole race.

    python benchmarks/longrange_table.py                      # adding, T = 200, the 5 default cells
    python benchmarks/longrange_table.py --task copy --length 100 --cells rnn,lstm

Prints the Markdown table of ``lstmlens longrange`` plus the total wall time, the torch thread
count and the machine, and (``--out``) writes the same text and a JSON record. Defaults are the
CLI's, so the numbers are those a user gets from ``lstmlens longrange adding``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

import torch

from lstmlens.cli.longrange import DEFAULT_CELLS, DEFAULT_MINUTES, DEFAULTS
from lstmlens.tasks.longrange import make_task
from lstmlens.tasks.longrange_compare import CompareConfig, compare_cells, format_table
from lstmlens.train import save_json_atomic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="adding", choices=sorted(DEFAULTS))
    parser.add_argument("--length", type=int, default=None)
    parser.add_argument("--cells", default=DEFAULT_CELLS)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write NAME.md and NAME.json")
    args = parser.parse_args()
    defaults = DEFAULTS[args.task]
    task = make_task(args.task, args.length or int(defaults["length"]))
    config = CompareConfig(
        steps=args.steps or int(defaults["steps"]),
        lr=defaults["lr"],
        seed=args.seed,
        total_minutes=DEFAULT_MINUTES,
    )
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]

    def progress(cell: str, record: dict[str, float]) -> None:
        print(
            f"  {cell:>8} step {int(record['step']):>5}  test {record['test_loss']:.4g}  "
            f"{record['seconds']:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    started = time.perf_counter()
    results = compare_cells(task, cells, config, progress)
    total = time.perf_counter() - started
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    )
    text = (
        f"{format_table(task, results)}\n\ntotal {total:.0f} s ({total / 60:.1f} min) on "
        f"{machine}; config {dataclasses.asdict(config)}"
    )
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
        save_json_atomic(
            args.out.with_suffix(".json"),
            {
                "task": task.name,
                "length": task.length,
                "total_seconds": total,
                "machine": machine,
                "config": dataclasses.asdict(config),
                "results": [dataclasses.asdict(r) for r in results],
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
