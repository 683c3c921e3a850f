"""Training throughput on 1 and 2 processes (``torch.distributed``, gloo, 1 thread each).

Both workloads are the product's defaults, built by the command line's own code
(its parser, with nothing changed but ``--epochs`` and the global model's time budget):

* ``char``: ``lstmlens text train`` as it runs with no option: the standard
  library's pydoc text (about 465,000 characters, the last 10% validating), a
  character LSTM with embedding 64, hidden 256 and dropout 0.1, 32 parallel
  streams x BPTT 100, Adam at 2e-3, gradient clipping at 1; samples = training
  tokens.
* ``global``: ``lstmlens forecast train panel.csv --id series --date time
  --target y --window 96 --horizon 24`` (the many-series forecaster; its hidden 32,
  batch 256, segments of 48, MAE, Adam at 3e-3, clipping at 1) on a synthetic
  long table of 300 hourly series of 300 to 500 points (daily and weekly seasons,
  trend, noise, each series its own level and scale), written to a temporary
  folder; ``--max-minutes 600`` so that the default 2-minute budget never cuts an
  epoch; samples = training windows.

Each workload is trained by 1 process and by 2 workers started through
:func:`lstmlens.train.launcher.launch` (torch's elastic launcher, as ``lstmlens
... train --nproc 2`` does) at the same batch: each rank trains on its half of
every batch (streams, or windows), DDP averages the gradients, so 2 processes train
the model that 1 trains (the parity tests of ``tests/test_distributed.py``). An
epoch is the trainer's whole epoch: training, then validation (each rank scoring
its share of the language model's validation streams) reduced over the ranks.

Columns:

* ``1 process``, ``2 processes``, ``ratio``: samples per second, the median epoch
  after the first (which pays for warm-up), on rank 0's wall clock: the headline.
* ``cpu/sample``: CPU-seconds of all ranks per sample (``time.process_time()`` of
  each rank over the same epochs, summed; gloo's threads included, waiting not);
  the cost of the work whatever the neighbours do. ``cpu bound`` = 2 x cpu/sample
  of 1 process / cpu/sample of 2: the ratio 2 otherwise idle cores would give.
* ``idle``: the share of the epochs' wall time the ranks were not running
  (1 - their mean CPU time / rank 0's wall time): on a quiet machine, the time
  spent waiting for the other rank (allreduce, a slower peer); on a busy one,
  mostly the neighbours' turns.
* ``val``: validation's share of rank 0's epoch (wall).
* ``--weak`` adds ``2 at 2b``: 2 processes at twice the batch (``--batch-size 64``
  streams, ``512`` windows), so that each process trains at the default batch; a
  different training run (half the steps per epoch), shown for what it says about
  per-step costs, not as the headline.
* ``--torchrun`` adds the 2-process run started by ``torchrun --standalone
  --nproc-per-node 2`` (this file as the worker script): its samples/s, and whether
  its trained weights equal those of the ``--nproc 2`` run bit for bit.

    python benchmarks/scale.py [--epochs 3] [--only global,char] [--weak] [--torchrun]
                               [--quick]

The goal is a 2-process / 1-process ratio >= 1.7 on 2 cores. The load average is
printed with the figures: on cores busy with other work the wall ratio says more
about the neighbours than about lstmlens.

A training step has one collective, DDP's gradient allreduce (one bucket; no
buffers to send); an epoch adds a few (the validation totals and metrics, the stop
decision). No rank builds another's rows: the global task yields its windows as
:class:`~lstmlens.train.distributed.Rows`, gathered per rank.

What limits the global forecaster: at its defaults a step is small (hidden 32, 256
windows of 2 segments) and mostly fixed cost, the same at any batch (Python,
autograd, Adam over the parameter tensors): on one process (the least CPU time of
400 steps), 2.80 ms a step at 256 windows and 2.46 ms at 128, so halving each
rank's batch saves 12%, while DDP adds about 0.3 ms a step and gloo's allreduce
about as much again. Two processes at the default batch can then not beat one
(``cpu bound`` 0.75 on a loaded machine); each at the default batch (``--weak``),
they reach ``cpu bound`` 1.78. The character model's step is 70 ms of work that
halves with the streams: 2 processes spend the same CPU time per token as one
(32.1 against 32.3 us, ``cpu bound`` 2.01).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lstmlens.train import distributed
from lstmlens.train.launcher import launch
from lstmlens.train.trainer import Trainer

GLOBAL_SERIES, GLOBAL_LENGTHS = 300, (300, 500)


# --------------------------------------------------------------------- the workloads


def _cli(argv: list[str]) -> argparse.Namespace:
    from lstmlens.cli.main import build_parser

    return build_parser().parse_args(argv)


def char_run(epochs: int, quick: bool, more: list[str]) -> int:
    """Train ``lstmlens text train``'s default model (``more``: extra options); returns the
    training tokens per epoch."""
    from lstmlens.cli.common import model_kwargs, train_config_from_args
    from lstmlens.tasks.text_run import TextOptions, prepare_text

    args = _cli(["text", "train", "--epochs", str(epochs), *more])
    options = TextOptions(  # as lstmlens.cli.text.train builds them
        level=args.level, lower=args.lower, max_vocab=args.max_vocab, min_count=args.min_count,
        embed_dim=args.embed_dim, tie_weights=args.tie_weights, seq_len=args.seq_len,
        batch_size=args.batch_size, val_fraction=args.val_fraction, model=model_kwargs(args),
    )  # fmt: skip
    prepared = prepare_text(args.corpus, options, train_config_from_args(args))
    task = prepared.task
    if quick:
        task.segments_per_epoch = 20
    Trainer(prepared.model, task, prepared.train).fit()
    streams = task.train_streams
    if quick:
        return 20 * streams.batch_size * streams.seq_len
    return streams.batch_size * (streams.stream_length - 1)


def write_panel(path: Path) -> None:
    """A long CSV ``series,time,y``: hourly series, daily and weekly seasons, trend, noise."""
    g = torch.Generator().manual_seed(0)
    lo, hi = GLOBAL_LENGTHS
    lines = ["series,time,y"]
    for s in range(GLOBAL_SERIES):
        n = int(torch.randint(lo, hi + 1, (1,), generator=g))
        t = torch.arange(n, dtype=torch.float64)
        a, b, c, level, scale = (torch.rand(5, generator=g, dtype=torch.float64) * 2).tolist()
        y = (
            a * torch.sin(2 * math.pi * t / 24)
            + b * torch.sin(2 * math.pi * t / 168)
            + c * t / n
            + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
        )
        y = 10 * level + 5 + scale * y
        start = 24 * int(torch.randint(0, 60, (1,), generator=g))
        lines += [
            f"s{s:03d},{_hour(start + i)},{v:.4f}" for i, v in enumerate(y.tolist())
        ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _hour(h: int) -> str:
    day, hour = divmod(h, 24)
    return time.strftime("%Y-%m-%d", time.gmtime(1_577_836_800 + 86_400 * day)) + f" {hour:02d}:00"


def global_run(epochs: int, quick: bool, more: list[str], csv: str) -> int:
    """Train ``lstmlens forecast train --id ...``'s default global model (``more``: extra
    options); returns the training windows per epoch."""
    from lstmlens.cli import forecast_global as cli
    from lstmlens.data.panel_windows import last_h_split
    from lstmlens.tasks.global_run import run_global

    window, horizon = 96, 24
    args = _cli(["forecast", "train", csv, "--id", "series", "--date", "time", "--target", "y",
                 "--window", str(window), "--horizon", str(horizon), "--epochs", str(epochs),
                 "--max-minutes", "600", *more])  # fmt: skip
    panel, net = cli._read(args)
    options = cli._options(args)
    if quick:
        from dataclasses import replace

        options = replace(options, max_steps_per_epoch=20)
    run_global(panel, None, window, horizon, args.season, net, options, baselines=(),
               **cli._seasonal(args))  # fmt: skip
    kept, _ = panel.drop_short(window + 3 * horizon)
    split = last_h_split(kept.lengths, horizon, val=1)
    windows = int(sum(max(0, int(e) - window - horizon + 1) for e in split.train_end))
    return min(windows, 20 * options.batch_size) if quick else windows


# ---------------------------------------------------------------- one worker's clocks

#: Options that keep each process at the default batch when 2 processes train (``--weak``).
DOUBLE_BATCH = {"char": ["--batch-size", "64"], "global": ["--batch-size", "512"]}


def worker(name: str, epochs: int, quick: bool, more: list[str], csv: str) -> dict[str, Any]:
    """Run workload ``name`` on this rank, timing every epoch and its validation (wall and
    this process's CPU); returns the samples per epoch, the clocks and a digest of the
    trained weights."""
    clocks: list[tuple[float, float]] = []
    validation: list[tuple[float, float]] = []
    models: list[torch.nn.Module] = []

    def timing(method: Any, into: list[tuple[float, float]]) -> Any:
        def timed(self: Trainer, *args: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            out = method(self, *args)
            into.append((time.perf_counter() - wall, time.process_time() - cpu))
            models[:] = [self.model]
            return out

        return timed

    Trainer._run_epoch = timing(Trainer._run_epoch, clocks)  # (this worker process only)
    Trainer._validate = timing(Trainer._validate, validation)
    torch.set_num_threads(1)
    if name == "char":
        samples = char_run(epochs, quick, more)
    else:
        samples = global_run(epochs, quick, more, csv)
    weights = b"".join(
        v.detach().cpu().contiguous().numpy().tobytes() for v in models[0].state_dict().values()
    )
    return {"samples": samples, "clocks": clocks, "validation": validation,
            "weights": hashlib.sha256(weights).hexdigest()}  # fmt: skip


def summarise(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Samples/s (rank 0's wall clock, median epoch after the first), CPU-seconds per sample
    (all ranks), validation's share of rank 0's epoch wall time, the weights' digest."""
    first = results[0]
    walls = [w for w, _ in first["clocks"][1:]]
    cpus = [statistics.median(c for _, c in r["clocks"][1:]) for r in results.values()]
    val = sum(w for w, _ in first["validation"][1:]) / sum(walls)
    busy = statistics.mean(sum(c for _, c in r["clocks"][1:]) for r in results.values())
    return {
        "per_s": first["samples"] / statistics.median(walls),
        "cpu_per_sample": sum(cpus) / first["samples"],
        "val_share": val,
        "idle": 1 - busy / sum(walls),
        "weights": first["weights"],
    }


def measure(name: str, nproc: int, epochs: int, quick: bool, csv: str, more=()) -> dict:
    args = (name, epochs, quick, list(more), csv)
    return summarise(launch(worker, args, nproc=nproc, threads=1))


def measure_torchrun(name: str, epochs: int, quick: bool, csv: str) -> dict[str, Any]:
    """The same workload started by ``torchrun --standalone --nproc-per-node 2``."""
    torchrun = Path(sys.executable).with_name("torchrun")
    command = (
        [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    )
    with tempfile.TemporaryDirectory() as out:
        command += ["--standalone", "--nproc-per-node", "2", __file__, "--worker", name,
                    "--epochs", str(epochs), "--csv", csv, "--result", out]  # fmt: skip
        command += ["--quick"] if quick else []
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        results = {
            r: json.loads((Path(out) / f"rank{r}.json").read_text(encoding="utf-8"))
            for r in range(2)
        }
    return summarise(results)


def torchrun_worker(args: argparse.Namespace) -> None:
    """``--worker NAME``: one rank under ``torchrun``; writes ``RESULT/rank{r}.json``."""
    where = distributed.init_from_environment()
    result = worker(args.worker, args.epochs, args.quick, [], args.csv)
    Path(args.result, f"rank{where.rank}.json").write_text(json.dumps(result), encoding="utf-8")


# ------------------------------------------------------------------------------ main


def cpu_model() -> str:
    """``lscpu``'s model name (the platform's processor string where lscpu is missing)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        import platform

        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "Model name" in line]
    return names[0] if names else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2)")
    parser.add_argument("--quick", action="store_true", help="20 steps an epoch (a smoke test)")
    parser.add_argument("--only", default="global,char", help="workloads, comma-separated")
    parser.add_argument("--torchrun", action="store_true", help="also run under torchrun")
    parser.add_argument(
        "--weak", action="store_true", help="also 2 processes at twice the batch (the default each)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return torchrun_worker(args)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed)")
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(DOUBLE_BATCH))
    if unknown:
        parser.error(f"--only: unknown workloads {unknown}; known: {sorted(DOUBLE_BATCH)}")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical cores, load {os.getloadavg()[0]:.1f}")
    head = f"{'workload':<9}{'1 process':>11}{'2 processes':>13}{'ratio':>7}"
    head += (
        f"{'cpu/sample 1':>14}{'2':>9}{'cpu bound':>11}{'idle 1':>8}{'2':>5}{'val 1':>7}{'2':>5}"
    )
    head += f"{'2 at 2b':>10}{'ratio':>7}{'cpu bound':>11}" if args.weak else ""
    print(head + (f"{'torchrun 2':>12}  same weights" if args.torchrun else ""))
    with tempfile.TemporaryDirectory() as tmp:
        csv = str(Path(tmp, "panel.csv"))
        if "global" in names:
            write_panel(Path(csv))
        for name in names:
            one = measure(name, 1, args.epochs, args.quick, csv)
            two = measure(name, 2, args.epochs, args.quick, csv)
            line = f"{name:<9}{one['per_s']:>11,.0f}{two['per_s']:>13,.0f}"
            line += f"{two['per_s'] / one['per_s']:>7.2f}"
            us1, us2 = 1e6 * one["cpu_per_sample"], 1e6 * two["cpu_per_sample"]
            line += f"{us1:>12.1f}us{us2:>7.1f}us{2 * us1 / us2:>11.2f}"
            line += f"{one['idle']:>8.0%}{two['idle']:>5.0%}"
            line += f"{one['val_share']:>7.0%}{two['val_share']:>5.0%}"
            if args.weak:
                weak = measure(name, 2, args.epochs, args.quick, csv, DOUBLE_BATCH[name])
                line += f"{weak['per_s']:>10,.0f}{weak['per_s'] / one['per_s']:>7.2f}"
                line += f"{2 * one['cpu_per_sample'] / weak['cpu_per_sample']:>11.2f}"
            if args.torchrun:
                run = measure_torchrun(name, args.epochs, args.quick, csv)
                line += f"{run['per_s']:>12,.0f}  {run['weights'] == two['weights']}"
            print(line, flush=True)
    print("samples/s: tokens (char), windows (global), median epoch after the first (rank 0's")
    print("wall clock); cpu/sample: CPU-seconds of all ranks per sample; cpu bound: the ratio")
    print("2 idle cores would give, 2 x cpu/sample 1 / cpu/sample 2; idle: share of the epoch")
    print("the ranks did not run; val: validation's share of the epoch; 2 at 2b: 2 processes")
    print("at twice the batch, each at the default")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
