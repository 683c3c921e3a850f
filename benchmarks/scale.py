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

``--nproc N`` runs N workers through :func:`lstmlens.train.launcher.launch`
(torch's elastic launcher, as ``lstmlens ... train --nproc N`` does); each rank
trains on its half of every batch (streams, or windows) and DDP averages the
gradients, so 2 processes train the same model as 1 (the parity tests). An epoch is
the trainer's whole epoch (training, then validation, reduced over the ranks);
throughput is the median over the epochs after the first (which pays for
warm-up), in wall time on rank 0's clock, the headline. Beside it, ``cpu/sample``
is the CPU time one rank spends per sample times the number of ranks (the mean
over the ranks of ``time.process_time()`` per epoch, over the same epochs): the
cost of the work, not of the neighbours. If 2 processes spend as many
CPU-seconds per sample as 1, the 2-process wall ratio on 2 otherwise idle cores is
close to 2 (``cpu ratio`` = 1-process / 2-process CPU per sample is that bound).

``--torchrun`` adds a third run of each workload started by ``torchrun
--nproc-per-node 2`` (this file as the worker script): its samples/s, and whether
its trained weights equal the ``--nproc 2`` run's bit for bit.

    python benchmarks/scale.py [--epochs 3] [--only global,char] [--torchrun] [--quick]

The goal is a 2-process / 1-process ratio >= 1.7 on 2 cores. The load average is
printed with the figures: on cores busy with other work the wall ratio says more
about the neighbours than about lstmlens.
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


def char_run(epochs: int, quick: bool) -> int:
    """Train ``lstmlens text train``'s default model; returns the training tokens per epoch."""
    from lstmlens.cli.common import model_kwargs, train_config_from_args
    from lstmlens.tasks.text_run import TextOptions, prepare_text

    args = _cli(["text", "train", "--epochs", str(epochs)])
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


def global_run(epochs: int, quick: bool, csv: str) -> int:
    """Train ``lstmlens forecast train --id ...``'s default global model; returns the
    training windows per epoch."""
    from lstmlens.cli import forecast_global as cli
    from lstmlens.data.panel_windows import last_h_split
    from lstmlens.tasks.global_run import run_global

    window, horizon = 96, 24
    args = _cli(["forecast", "train", csv, "--id", "series", "--date", "time", "--target", "y",
                 "--window", str(window), "--horizon", str(horizon), "--epochs", str(epochs),
                 "--max-minutes", "600"])  # fmt: skip
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


def worker(name: str, epochs: int, quick: bool, csv: str) -> dict[str, Any]:
    """Run workload ``name`` on this rank, timing every epoch (wall and this process's CPU);
    returns the samples per epoch, the clocks and a digest of the trained weights."""
    clocks: list[tuple[float, float]] = []
    models: list[torch.nn.Module] = []
    run_epoch = Trainer._run_epoch

    def timed(self: Trainer, epoch: int) -> dict[str, Any]:
        wall, cpu = time.perf_counter(), time.process_time()
        record = run_epoch(self, epoch)
        clocks.append((time.perf_counter() - wall, time.process_time() - cpu))
        models[:] = [self.model]
        return record

    Trainer._run_epoch = timed  # (this worker process only)
    torch.set_num_threads(1)
    samples = char_run(epochs, quick) if name == "char" else global_run(epochs, quick, csv)
    weights = b"".join(
        v.detach().cpu().contiguous().numpy().tobytes() for v in models[0].state_dict().values()
    )
    world = distributed.ranks().world_size
    return {"samples": samples, "clocks": clocks, "world": world,
            "weights": hashlib.sha256(weights).hexdigest()}  # fmt: skip


def summarise(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Samples/s (rank 0's wall clock) and CPU-seconds per sample (all ranks)."""
    first = results[0]
    walls = [w for w, _ in first["clocks"][1:]]
    cpus = [statistics.median(c for _, c in r["clocks"][1:]) for r in results.values()]
    return {
        "per_s": first["samples"] / statistics.median(walls),
        "cpu_per_sample": sum(cpus) / first["samples"],
        "weights": first["weights"],
    }


def measure(name: str, nproc: int, epochs: int, quick: bool, csv: str) -> dict[str, Any]:
    return summarise(launch(worker, (name, epochs, quick, csv), nproc=nproc, threads=1))


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
    result = worker(args.worker, args.epochs, args.quick, args.csv)
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return torchrun_worker(args)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed)")
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - {"global", "char"})
    if unknown:
        parser.error(f"--only: unknown workloads {unknown}; known: ['char', 'global']")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical cores, load {os.getloadavg()[0]:.1f}")
    head = f"{'workload':<9}{'1 process':>12}{'2 processes':>13}{'ratio':>7}"
    head += f"{'cpu/sample 1':>14}{'2':>9}{'cpu ratio':>10}"
    print(head + (f"{'torchrun 2':>12}  same weights" if args.torchrun else ""))
    with tempfile.TemporaryDirectory() as tmp:
        csv = str(Path(tmp, "panel.csv"))
        if "global" in names:
            write_panel(Path(csv))
        for name in names:
            one = measure(name, 1, args.epochs, args.quick, csv)
            two = measure(name, 2, args.epochs, args.quick, csv)
            line = f"{name:<9}{one['per_s']:>12,.0f}{two['per_s']:>13,.0f}"
            line += f"{two['per_s'] / one['per_s']:>7.2f}"
            us1, us2 = 1e6 * one["cpu_per_sample"], 1e6 * two["cpu_per_sample"]
            line += f"{us1:>12.1f}us{us2:>7.1f}us{us1 / us2:>10.2f}"
            if args.torchrun:
                run = measure_torchrun(name, args.epochs, args.quick, csv)
                line += f"{run['per_s']:>12,.0f}  {run['weights'] == two['weights']}"
            print(line, flush=True)
    print("samples/s: tokens (char), windows (global); median epoch after the first")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
