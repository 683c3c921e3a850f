"""Training throughput on 1 and 2 processes (``torch.distributed``, gloo, 1 thread each).

For each workload the same global batch is trained by 1 process and by 2 processes
(launched through :func:`lstmlens.train.distributed.launch`, i.e. torch's elastic
launcher; each rank trains on half of every batch, gradients averaged by DDP).
Throughput is measured inside the workers over the epochs after the first (the
first pays for imports and allocator warm-up), from the trainer's per-epoch
``seconds`` (validation sets are kept tiny so that they cost little):

* ``forecaster``: a many-series-style window forecaster, 8192 windows of 32 steps,
  hidden 64, global batch 256; samples = windows per second.
* ``char``: a character LSTM language model, hidden 128, embedding 32, 32 parallel
  streams x BPTT 64 (16 per rank); samples = tokens per second.

    .venv/bin/python benchmarks/scale.py [--epochs 3] [--quick]

The ratio ``2 processes / 1 process`` is printed per workload. On a machine whose
cores are busy with other work the ratio says more about the neighbours than
about lstmlens: note the load with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import torch

from lstmlens.data.text import build_tokenizer
from lstmlens.tasks.forecast_model import ForecastNet, ForecastTask, NetConfig
from lstmlens.tasks.language import LanguageModel, LanguageTask
from lstmlens.train import TrainConfig, Trainer, seed_everything
from lstmlens.train import distributed as D


def forecaster_run(epochs: int, quick: bool) -> tuple[float, float]:
    """(samples per epoch, median seconds per epoch after the first) on this rank's share."""
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


WORKLOADS = {"forecaster": forecaster_run, "char": char_run}


def measure(name: str, nproc: int, epochs: int, quick: bool) -> float:
    """Samples per second of ``name`` trained by ``nproc`` processes (rank 0's clock)."""
    out = D.launch(WORKLOADS[name], (epochs, quick), nproc=nproc, threads=1)
    samples, seconds = out[0]
    return samples / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2)")
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke test)")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"cpu: {cpu}, {os.cpu_count()} logical cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'workload':<12}{'1 process':>14}{'2 processes':>14}{'ratio':>8}")
    for name in WORKLOADS:
        one = measure(name, 1, args.epochs, args.quick)
        two = measure(name, 2, args.epochs, args.quick)
        print(f"{name:<12}{one:>14,.0f}{two:>14,.0f}{two / one:>8.2f}")
    print("samples/s: forecaster windows, char tokens; the median epoch after the first")


if __name__ == "__main__":
    main()
