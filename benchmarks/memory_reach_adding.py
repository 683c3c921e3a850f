"""Memory reach on the adding problem: how far back a trained RNN, GRU and LSTM still listen.

Trains each cell with the ``lstmlens longrange adding`` recipe (hidden 64, batch 32, Adam
lr 3e-2, gradient clip 1, forget bias 1, same batches for every cell) at ``--length`` T,
stopping at test MSE < 0.01 or after ``--steps``, then measures
``lstmlens.lens.memory_reach(model, x, T - 1)`` on ``--sequences`` test sequences and
reports, per cell, the median over sequences of reach_k / reach_0 at the chosen lags. It
writes the comparison page (:func:`lstmlens.lens.compare.compare_page`) to ``--html``.

    nice .venv/bin/python benchmarks/memory_reach_adding.py [--length 100] [--steps 3000]
        [--cells rnn,gru,lstm] [--html docs/memory_reach.html] [--models DIR]

With ``--models DIR``, trained weights are kept in DIR and reused on the next run.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lstmlens.lens import memory_reach
from lstmlens.tasks.longrange import make_task
from lstmlens.tasks.longrange_compare import LongRangeModel


def train(
    task, cell: str, steps: int, lr: float, full: bool, seed: int = 0
) -> tuple[nn.Module, float, int]:
    """The longrange recipe; returns (model, test MSE, steps taken)."""
    torch.manual_seed(seed)
    model = LongRangeModel(task, cell, 64, forget_bias=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    stream = torch.Generator().manual_seed(seed)
    test = task.sample(500, torch.Generator().manual_seed(seed + 1_000_003))
    mse, step = math.nan, 0
    started = time.monotonic()
    while step < steps:
        batch = task.sample(32, stream)
        loss = task.loss(model(batch.inputs), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 100 == 0 or step == steps:
            with torch.no_grad():
                mse = float(task.loss(model.eval()(test.inputs), test))
            model.train()
            print(
                f"{cell:>5} step {step:>5}  test MSE {mse:.4g}  {time.monotonic() - started:.0f}s"
            )
            if mse < 0.01 and not full:
                break
    return model.eval(), mse, step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--lr", type=float, default=3e-2, help="Adam's learning rate (3e-2)")
    p.add_argument("--full", action="store_true", help="train all --steps, even once solved")
    p.add_argument("--sequences", type=int, default=20)
    p.add_argument("--lags", default="10,30,60,90")
    p.add_argument("--html", type=Path, default=None)
    p.add_argument("--models", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    task = make_task("adding", args.length)
    lags = [int(k) for k in args.lags.split(",")]
    xs = task.sample(args.sequences, torch.Generator().manual_seed(7)).inputs  # (N, T, 2)
    models, rows = {}, []
    for cell in args.cells.split(","):
        saved = (
            args.models / f"{cell}-T{args.length}-lr{args.lr:g}{'-full' if args.full else ''}.pt"
            if args.models
            else None
        )
        if saved is not None and saved.exists():
            model = LongRangeModel(task, cell, 64)
            model.load_state_dict(torch.load(saved, weights_only=True))
            model.eval()
            test = task.sample(500, torch.Generator().manual_seed(1_000_003))
            with torch.no_grad():
                mse, steps = float(task.loss(model(test.inputs), test)), -1
        else:
            model, mse, steps = train(task, cell, args.steps, args.lr, args.full)
            if saved is not None:
                saved.parent.mkdir(parents=True, exist_ok=True)
                torch.save(model.state_dict(), saved)
        t = args.length - 1
        wide = copy.deepcopy(model).double()  # float64: a saturated RNN's reach underflows float32
        ratios = np.stack([(r := memory_reach(wide, x[None].double(), t)) / r[0] for x in xs])
        median = np.median(ratios, axis=0)
        rows.append((cell, mse, steps, [median[k] for k in lags]))
        models[f"{cell} (test MSE {mse:.3g})"] = wide
    print(
        f"\nadding problem, T = {args.length}: median over {args.sequences} test sequences of "
        f"reach_k / reach_0 at t = T - 1 (float64), Adam lr {args.lr:g}"
    )
    print("| cell | test MSE | steps | " + " | ".join(f"k = {k}" for k in lags) + " |")
    print("|---" * (3 + len(lags)) + "|")
    for cell, mse, steps, values in rows:
        cells = " | ".join(f"{v:.2e}" for v in values)
        print(f"| {cell} | {mse:.4f} | {steps if steps >= 0 else 'saved'} | {cells} |")
    if args.html is not None:
        from lstmlens.lens.compare import compare_page
        from lstmlens.lens.html import write_page

        page = compare_page(
            models,
            xs[0][None].double(),
            title=f"Memory reach on the adding problem, T = {args.length}",
        )
        write_page(page, args.html)
        print(f"wrote {args.html}")


if __name__ == "__main__":
    main()
