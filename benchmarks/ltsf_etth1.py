"""ETTh1 under the published long-horizon protocol, beside the SegRNN table.

``../shared/data/series/ETTh1.csv``, all 7 columns (channel independence: one shared
model, each column a series), split ``8640,2880,2880`` rows, z-scored with the training
mean/std, lookback 96, every test window scored (stride 1), MSE/MAE on the normalised
scale. The model is the segment-wise recurrent network of
:mod:`lstmlens.tasks.segment_model` (SegRNN's recipe: segments of 48, GRU of width 512,
last-value normalisation, channel embeddings, dropout 0.5, MAE loss, Adam 1e-3), trained under a
time cap (``--clock cpu``: CPU seconds of this process, so that a loaded machine does not
shrink the budget; with one thread it is the wall time of an idle machine) with the weights
of the best validation epoch kept.

    PYTHONPATH=src nice -n 10 python benchmarks/ltsf_etth1.py --horizon 336 [--hidden 512]
        [--segment 48] [--cell gru] [--minutes 8] [--clock cpu] [--epochs 30] [--threads 1]
        [--run-dir /tmp/ltsf_etth1] [--results benchmarks/results/ltsf_etth1]

Published test MSE (SegRNN repository README, L = 96, full test set) in ``REFERENCE``.
Measured 2026-11-29 (Intel Xeon, 1 thread, 2 shared cores under heavy load, GRU 512,
segments of 48; 8-minute cap): H = 96 (dropout 0): MSE 0.375, MAE 0.395 (best epoch 2
of 5, 427 s); H = 192 (dropout 0.5): MSE 0.419, MAE 0.418 (2 epochs in the cap).
Measured 2026-11-30 (same machine, defaults): H = 336: MSE 0.455, MAE 0.438 (9-minute wall
cap, 3 epochs, best 1). With the code of 2026-11-30 (defaults, ``--minutes 10``, CPU clock;
load 10-14 on the 2 cores, so wall times are 3-4x the CPU times): H = 96: MSE 0.374, MAE
0.393 (early stop after 5 epochs, best 2); H = 192: MSE 0.413, MAE 0.415 (early stop after
7 epochs, best 4; 470 s wall); H = 336: MSE 0.472, MAE 0.448 (early stop after 4 epochs,
best 1; worse than the 0.455 above); H = 720: MSE 0.457, MAE 0.454 (early stop after
4 epochs, best 1); none reached the 10 CPU-minute cap.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from lstmlens.data.panel import read_panel
from lstmlens.tasks.global_run import TrainOptions, run_ltsf

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "series" / "ETTh1.csv"

#: Published test MSE on ETTh1 at lookback 96, by horizon.
REFERENCE = {
    "SegRNN": {96: 0.368, 192: 0.408, 336: 0.444, 720: 0.446},
    "iTransformer": {96: 0.386, 192: 0.441, 336: 0.487, 720: 0.503},
    "PatchTST": {96: 0.414, 192: 0.460, 336: 0.501, 720: 0.500},
    "DLinear": {96: 0.386, 192: 0.437, 336: 0.481, 720: 0.519},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--window", type=int, default=96)
    parser.add_argument("--segment", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument(
        "--schedule", default=None, help="learning-rate schedule: cosine (over --epochs) or plateau"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--clock", default="cpu", help="--minutes of cpu (this process) or wall time"
    )
    parser.add_argument("--run-dir", default="/tmp/ltsf_etth1")
    parser.add_argument(
        "--results", default=None, help="append this horizon to RESULTS.json and rewrite RESULTS.md"
    )
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"skipped: {DATA} not found")
    torch.set_num_threads(args.threads)
    panel = read_panel(DATA, "all", date="date")
    started = time.perf_counter()
    metrics = run_ltsf(
        panel,
        args.run_dir,
        args.window,
        args.horizon,
        "8640,2880,2880",
        net={
            "segment": args.segment,
            "hidden_size": args.hidden,
            "cell": args.cell,
            "dropout": args.dropout,
            "channels": len(panel),
        },  # fmt: skip
        options=TrainOptions(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            patience=3,
            max_minutes=args.minutes,
            clock=args.clock,
            schedule=args.schedule,
        ),  # fmt: skip
        log=print,
    )
    wall = time.perf_counter() - started
    model, naive = metrics["model"], metrics["baselines"]["naive"]
    print(f"ETTh1 L={args.window} H={args.horizon}: {metrics['test_windows']} test windows, "
          f"{wall:.0f} s, stopped by {metrics['training']['stopped']}")  # fmt: skip
    print(f"{'lstmlens segment ' + args.cell:<28} MSE {model['mse']:.3f}  MAE {model['mae']:.3f}")
    print(f"{'repeat last value':<28} MSE {naive['mse']:.3f}  MAE {naive['mae']:.3f}")
    for name, row in REFERENCE.items():
        if args.horizon in row:
            print(f"{name + ' (published)':<28} MSE {row[args.horizon]:.3f}")
    if args.results:
        _record(Path(args.results), args, metrics, wall)


def _record(out: Path, args: argparse.Namespace, metrics: dict, wall: float) -> None:
    """Keep this horizon's figures in ``OUT.json`` (by horizon) and rewrite ``OUT.md``."""
    training = metrics["training"]
    epochs = training["epochs"]
    best = min(epochs, key=lambda e: e["val_loss"])["epoch"] if epochs else 0
    doc = (
        json.loads(out.with_suffix(".json").read_text())
        if out.with_suffix(".json").exists()
        else {}
    )
    doc[str(args.horizon)] = {
        "mse": metrics["model"]["mse"], "mae": metrics["model"]["mae"],
        "naive": metrics["baselines"]["naive"], "test_windows": metrics["test_windows"],
        "epochs": len(epochs), "best_epoch": best,
        "best_val_loss": min((e["val_loss"] for e in epochs), default=None), "stopped": training["stopped"],
        "train_seconds": training["seconds"], "wall_seconds": wall, "cpu": _cpu(),
        "process_cpu_seconds": time.process_time(),
        "options": {k: v for k, v in vars(args).items() if k not in ("results", "run_dir")},
    }  # fmt: skip
    _write_atomic(out.with_suffix(".json"), json.dumps(doc, indent=1) + "\n")
    _write_atomic(out.with_suffix(".md"), _table(doc))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _table(doc: dict) -> str:
    """The markdown table of every horizon recorded in ``doc``."""
    names = list(REFERENCE)
    lines = ["# ETTh1, --protocol ltsf --window 96 --split 8640,2880,2880 --target all", "",
             "Test MSE / MAE on the z-normalised scale, every test window (stride 1); the "
             "published rows are MSE (SegRNN repository README, L = 96).", "",
             "| H | lstmlens MSE | MAE | " + " | ".join(names) + " | epochs (best) | train s | cap |",
             "|---" * (6 + len(names)) + "|"]  # fmt: skip
    for h, row in sorted(doc.items(), key=lambda kv: int(kv[0])):
        ref = " | ".join(f"{REFERENCE[n].get(int(h), float('nan')):.3f}" for n in names)
        lines.append(f"| {h} | {row['mse']:.3f} | {row['mae']:.3f} | {ref} | "
                     f"{row['epochs']} ({row['best_epoch']}){_early(row)} | {row['train_seconds']:.0f} | "
                     f"{row['options']['minutes']:g} min {row['options'].get('clock', 'wall')} |")  # fmt: skip
    lines += ["", f"CPU: {_cpu()}, 1 torch thread, shared machine (timings pessimistic).", ""]
    return "\n".join(lines)


def _early(row: dict) -> str:
    return ", stopped early" if row.get("stopped") == "early_stopping" else ""


def _cpu() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "?")


if __name__ == "__main__":
    main()
