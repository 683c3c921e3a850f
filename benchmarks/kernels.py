"""Kernel table: torch.nn.LSTM, a naive nn.LSTMCell loop, the lstmlens reference loop, the fused
path and the native (compiled) kernel for every preset variant and layer_norm, forward+backward
and inference, at the three shapes of docs/design.md, as ms and as a ratio to torch.nn.LSTM
measured in the same run (interleaved rounds, medians).

    .venv/bin/python benchmarks/kernels.py [--repeats 5] [--quick] [--native-only]
"""

import argparse
import sys

import torch

from lstmlens.bench import DESIGN_SHAPES, KERNEL_VARIANTS, format_table, run_benchmark
from lstmlens.kernels.native import status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small shapes, 2 repeats (smoke run)")
    ap.add_argument(
        "--native-only", action="store_true", help="only torch.nn.LSTM and the native rows"
    )
    args = ap.parse_args()
    shapes = [(8, 10, 4, 16)] if args.quick else DESIGN_SHAPES
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
    rows = run_benchmark(
        shapes,
        impls,
        repeats=repeats,
        progress=lambda r: print(
            f"  {r.shape} {r.impl:18s} {r.mode}: {r.ms:.1f} ms", file=sys.stderr
        ),
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
