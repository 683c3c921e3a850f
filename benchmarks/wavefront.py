"""Wavefront schedule vs torch.nn.LSTM: stacked and bidirectional LSTMs, training and inference.

torch.nn.LSTM runs at torch's default thread count (or --threads); the native kernel runs its
layers one after another (``sequential``) and as a wavefront (``wavefront``: layers pipelined
over chunks of steps, both directions at once, one thread per chain), plus ``auto`` (whatever
the measured rule picks). Every implementation is warmed up, then all are timed in interleaved
rounds (medians of wall time, and of the process's CPU time); ratios are to torch.nn.LSTM in
the same run. Shapes are (B, T, I, H). Run it on a quiet machine: on a loaded one, threads
waiting at OpenMP barriers inflate the 2-thread wall times many-fold.

    .venv/bin/python benchmarks/wavefront.py [--repeats 7] [--threads N] [--quick]
        [--crossover]   # also a sweep of small shapes: where the wavefront starts to pay
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from lstmlens import LSTM
from lstmlens.kernels.native import status

#: (B, T, I, H, layers, bidirectional): issue 16's stacked and bidirectional shapes, and one
#: single layer (where auto keeps the sequential schedule: no regression)
SHAPES = (
    (64, 100, 256, 256, 2, False),
    (32, 200, 128, 256, 1, True),
    (64, 100, 256, 256, 1, False),
)
#: small shapes for the crossover of the auto rule (2 layers, and bidirectional)
CROSSOVER = tuple(
    (B, 50, H, H, layers, bi)
    for B, H in ((8, 32), (16, 64), (32, 64), (16, 128), (32, 128), (64, 128))
    for layers, bi in ((2, False), (1, True))
)


def cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    return next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "Model name" in ln), "?"
    )


def models(shape) -> dict[str, torch.nn.Module]:
    B, T, I, H, layers, bi = shape
    torch.manual_seed(0)
    ref = torch.nn.LSTM(I, H, layers, bidirectional=bi)
    out = {"torch.nn.LSTM": ref}
    for schedule in ("sequential", "wavefront", "auto"):
        m = LSTM.from_torch(ref, backend="native", schedule=schedule)
        out[f"native {schedule}"] = m
    return out


def timed(steps: dict, repeats: int, warmup: int = 2) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms of this process) of each step, interleaved rounds after warm-up.

    CPU time counts every thread's work: on a loaded machine it still shows what the
    wavefront costs over running the layers one by one, where wall time mostly shows the load.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            c0, t0 = time.process_time(), time.perf_counter()
            step()
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in steps}


def bench(shape, repeats: int) -> list[tuple[str, str, float, float, float, str]]:
    B, T, I, H, _, _ = shape
    x = torch.randn(T, B, I)
    mods = models(shape)
    rows = []
    for mode in ("train", "infer"):
        steps = {}
        for name, m in mods.items():
            if mode == "train":

                def step(m=m):
                    out, (h, c) = m(x.clone().requires_grad_())
                    (out.sum() + c.sum()).backward()
            else:

                def step(m=m):
                    with torch.inference_mode():
                        m(x)

            steps[name] = step
        medians = timed(steps, repeats)
        base = medians["torch.nn.LSTM"][0]
        for name, (ms, cpu) in medians.items():
            ran = getattr(mods[name], "last_schedule", None) or ""
            rows.append((mode, name, ms, ms / base, cpu, ran))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--quick", action="store_true", help="one small shape, 2 repeats (smoke run)")
    ap.add_argument("--crossover", action="store_true", help="also sweep small shapes")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    st = status()
    if not st.ok:
        sys.exit(f"wavefront.py: the native kernel is unavailable ({st.summary()})")
    shapes = [(8, 20, 16, 32, 2, False)] if args.quick else list(SHAPES)
    if args.crossover:
        shapes += CROSSOVER
    repeats = 2 if args.quick else args.repeats
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| (B, T, I, H) | layers | bidir | mode | implementation | ms | x torch | CPU ms | ran |")
    print("|---|---:|---|---|---|---:|---:|---:|---|")
    for shape in shapes:
        B, T, I, H, layers, bi = shape
        for mode, name, ms, ratio, cpu, ran in bench(shape, repeats):
            print(
                f"| {(B, T, I, H)} | {layers} | {'yes' if bi else 'no'} | {mode} | {name} "
                f"| {ms:.1f} | {ratio:.2f} | {cpu:.1f} | {ran} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
