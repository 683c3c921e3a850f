"""Training throughput on 1 and 2 processes (``torch.distributed``, gloo, 1 thread each).

For each workload the same global batch is trained by 1 process and by 2 processes
(launched through :func:`lstmlens.train.launcher.launch`, i.e. torch's elastic
launcher; each rank trains on half of every batch, gradients averaged by DDP).
Throughput is measured inside the workers over the epochs after the first (the
first pays for imports and allocator warm-up), from the trainer's per-epoch
``seconds`` (validation sets are kept tiny so that they cost little):

* ``global``: the many-series global forecaster's network (the segment-wise LSTM
  of :mod:`lstmlens.tasks.segment_model`, channel independent, a series embedding),
  windows of 256 series (W 96 in segments of 24, H 24), hidden 64, global batch
  256, MAE as the global runner trains; samples = windows per second.
* ``forecaster``: the single-series window forecaster, 8192 windows of 32 steps,
  hidden 64, global batch 256; samples = windows per second.
* ``char``: a character LSTM language model, hidden 128, embedding 32, 32 parallel
  streams x BPTT 64 (16 per rank); samples = tokens per second.

    python benchmarks/scale.py [--epochs 3] [--quick] [--only global,char]

The ratio ``2 processes / 1 process`` is printed per workload (goal: >= 1.7 on 2
cores). On a machine whose cores are busy with other work the ratio says more about
the neighbours than about lstmlens: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess

import torch

from lstmlens.data.text import build_tokenizer
from lstmlens.tasks.forecast_model import ForecastNet, ForecastTask, NetConfig
from lstmlens.tasks.language import LanguageModel, LanguageTask
from lstmlens.tasks.segment_model import SegmentConfig, SegmentNet
from lstmlens.train import TrainConfig, Trainer, seed_everything
from lstmlens.train.launcher import launch


class PanelTask:
    """Windows of many series for :class:`SegmentNet`: ``(x (B, W), y (B, H), series (B,))``,
    shuffled by the trainer's generator, MAE on the standardised scale."""

    def __init__(self, x, y, series, batch_size: int) -> None:
        self.x, self.y, self.series, self.batch_size = x, y, series, batch_size

    def train_batches(self, epoch: int, generator: torch.Generator):
        order = torch.randperm(len(self.x), generator=generator)
        return [(self.x[i], self.y[i], self.series[i]) for i in torch.split(order, self.batch_size)]

    def batch_rows(self) -> int:
        return min(self.batch_size, len(self.x))

    def training_loss(self, model, batch) -> torch.Tensor:
        x, y, series = batch
        return torch.nn.functional.l1_loss(model(x, series), y)

    def validate(self, model) -> dict[str, float]:
        x, y, series = self.x[:64], self.y[:64], self.series[:64]
        return {"val_loss": float(torch.nn.functional.l1_loss(model(x, series), y))}


def global_run(epochs: int, quick: bool) -> tuple[float, float]:
    """(samples per epoch, median seconds per epoch after the first)."""
    n_series, length, w, h = 256, (160 if quick else 400), 96, 24
    g = torch.Generator().manual_seed(0)
    t = torch.arange(length, dtype=torch.float32)
    phase = torch.rand(n_series, 1, generator=g) * 6.28
    panel = torch.sin(t / 12 + phase) + 0.3 * torch.randn(n_series, length, generator=g)
    starts = torch.arange(0, length - w - h + 1, 4)
    x = torch.stack([panel[:, s : s + w] for s in starts], 1).flatten(0, 1)  # (n, W)
    y = torch.stack([panel[:, s + w : s + w + h] for s in starts], 1).flatten(0, 1)  # (n, H)
    series = torch.arange(n_series).repeat_interleave(len(starts))  # (n,)
    seed_everything(0)
    config = SegmentConfig(window=w, horizon=h, segment=24, hidden_size=64, cell="lstm",
                           channels=n_series)  # fmt: skip
    result = Trainer(
        SegmentNet(config), PanelTask(x, y, series, 256), TrainConfig(epochs=epochs)
    ).fit()
    return float(len(x)), statistics.median(r["seconds"] for r in result.history[1:])


def forecaster_run(epochs: int, quick: bool) -> tuple[float, float]:
    n = 2048 if quick else 8192
    g = torch.Generator().manual_seed(0)
    series = torch.randn(n + 40, generator=g).cumsum(0) * 0.05
    x = torch.stack([series[i : i + 32] for i in range(n)]).unsqueeze(-1)  # (n, 32, 1)
    y = series[32 : n + 32].unsqueeze(-1)  # (n, 1)
    task = ForecastTask(x, y, x[:64], y[:64], batch_size=256)
    seed_everything(0)
    model = ForecastNet(NetConfig(input_size=1, hidden_size=64))
    result = Trainer(model, task, TrainConfig(epochs=epochs)).fit()
    return float(n), statistics.median(r["seconds"] for r in result.history[1:])


def char_run(epochs: int, quick: bool) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    letters = "abcdefghijklmnopqrstuvwxyz .,"
    n = 40_000 if quick else 160_000
    text = "".join(letters[int(i)] for i in torch.randint(len(letters), (n,), generator=g))
    tok = build_tokenizer(text, "char")
    ids = torch.tensor(tok.encode(text))
    seed_everything(0)
    model = LanguageModel(tok, embed_size=32, hidden_size=128)
    task = LanguageTask(model, ids[:-2000], ids[-2000:], batch_size=32, seq_len=64)
    result = Trainer(model, task, TrainConfig(epochs=epochs)).fit()
    tokens = task.train_streams.batch_size * (task.train_streams.stream_length - 1)
    return float(tokens), statistics.median(r["seconds"] for r in result.history[1:])


WORKLOADS = {"global": global_run, "forecaster": forecaster_run, "char": char_run}


def measure(name: str, nproc: int, epochs: int, quick: bool) -> float:
    """Samples per second of ``name`` trained by ``nproc`` processes (rank 0's clock)."""
    out = launch(WORKLOADS[name], (epochs, quick), nproc=nproc, threads=1)
    samples, seconds = out[0]
    return samples / seconds


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
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke test)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, comma-separated")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed)")
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"--only: unknown workloads {unknown}; known: {sorted(WORKLOADS)}")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'workload':<12}{'1 process':>14}{'2 processes':>14}{'ratio':>8}")
    for name in names:
        one = measure(name, 1, args.epochs, args.quick)
        two = measure(name, 2, args.epochs, args.quick)
        print(f"{name:<12}{one:>14,.0f}{two:>14,.0f}{two / one:>8.2f}", flush=True)
    print("samples/s: windows (global, forecaster), tokens (char); median epoch after the first")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
