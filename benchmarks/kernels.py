"""Kernel table: torch.nn.LSTM, a naive nn.LSTMCell loop, the lstmlens reference loop, the fused
path and the native (compiled) kernel for every preset variant and layer_norm, forward+backward
and inference, at the shapes of docs/design.md plus a 2-layer and a bidirectional one, as ms,
as a ratio to torch.nn.LSTM measured in the same run (warmed up, interleaved rounds, medians),
as matmul GFLOP/s and as a percentage of the fp32 matmul peak measured first.

    .venv/bin/python benchmarks/kernels.py [--repeats 5] [--quick] [--native-only] [--threads N]
"""

import argparse
import sys

import torch

from lstmlens.bench import (
    DESIGN_SHAPES,
    KERNEL_VARIANTS,
    format_table,
    matmul_peak,
    run_benchmark,
)
from lstmlens.kernels.native import status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small shapes, 2 repeats (smoke run)")
    ap.add_argument(
        "--native-only", action="store_true", help="only torch.nn.LSTM and the native rows"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    shapes = (
        [(8, 10, 4, 16), (8, 10, 4, 16, 2), (8, 10, 4, 16, 1, True)]
        if args.quick
        else DESIGN_SHAPES
    )
    repeats = 2 if args.quick else args.repeats
    st = status()
    native = "native kernel " + (str(st.path) if st.ok else f"UNAVAILABLE ({st.summary()})")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {native}", file=sys.stderr
    )
    impls = ["torch.nn.LSTM"]
    if not args.native_only:
        impls += ["nn.LSTMCell loop", "reference:vanilla", "fused:vanilla"]
    impls += [f"native:{v}" for v in KERNEL_VARIANTS]
    peak = matmul_peak()
    print(peak.line(), file=sys.stderr)
    rows = run_benchmark(
        shapes,
        impls,
        repeats=repeats,
        progress=lambda r: print(
            f"  {r.shape.label()} {r.impl:18s} {r.mode}: {r.ms:.1f} ms", file=sys.stderr
        ),
        peak=peak,
    )
    print(format_table(rows, peak))


if __name__ == "__main__":
    main()
