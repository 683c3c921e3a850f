"""Loss parity of ``--precision bf16`` against fp32: the same short run of each task (same seed,
same data, a few epochs, one torch thread), once per precision, interleaved.

Prints, per task, the best validation loss of each precision, their difference and the wall
time of each run. The runs use each command's built-in data (forecast: statsmodels' co2;
text: the standard library's pydoc_data; classify: scikit-learn's digits), so nothing needs
downloading. On a CPU without native bf16 the bf16 runs are refused (lstmlens.precision).

    PYTHONPATH=src .venv/bin/python benchmarks/bf16_parity.py [--epochs 3] [--tasks forecast,...]
"""

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

from lstmlens.cli import main as cli_main
from lstmlens.precision import cpu_model, native_bf16

TASKS = {  # task -> the train command's arguments besides --precision/--out/--epochs
    "forecast": ["forecast", "train", "--horizon", "4", "--baselines", "none", "--no-lens"],
    "text": ["text", "train", "--level", "char", "--hidden", "128", "--no-lens"],
    "classify": ["classify", "train", "--hidden", "64"],
}


def run(task: str, precision: str, epochs: int, folder: Path) -> tuple[float, float]:
    """(best validation loss, training seconds) of one run."""
    out = folder / f"{task}-{precision}"
    argv = [*TASKS[task], "--precision", precision, "--epochs", str(epochs), "--seed", "0",
            "--threads", "1", "--quiet", "--force", "--out", str(out)]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        if cli_main.main(argv) != 0:
            raise SystemExit(f"{' '.join(argv)} failed")
    metrics = json.loads((out / "metrics.json").read_text())
    training = metrics.get("training", metrics)  # forecast nests it
    return float(training["best_val_loss"]), float(training["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--tasks", default=",".join(TASKS))
    args = ap.parse_args()
    print(f"{cpu_model()}; native bf16: {native_bf16()}; {args.epochs} epochs, seed 0, 1 thread")
    print("| task | fp32 best val loss | bf16 best val loss | bf16 - fp32 | fp32 s | bf16 s |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            (l32, s32), (l16, s16) = (
                run(task, p, args.epochs, Path(tmp)) for p in ("fp32", "bf16")
            )
            print(f"| {task} | {l32:.4f} | {l16:.4f} | {l16 - l32:+.4f} | {s32:.0f} | {s16:.0f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
