"""Kernel table: torch.nn.LSTM, a naive nn.LSTMCell loop, the lstmlens reference loop and the
fused path (vanilla, peephole, cifg, layer_norm), forward+backward and inference, at the three
shapes of DESIGN section 5, as ms and as a ratio to torch.nn.LSTM measured in the same run.

    .venv/bin/python benchmarks/kernels.py [--repeats 5] [--quick]
"""

import argparse
import sys

import torch

from lstmlens.bench import DESIGN_SHAPES, format_table, run_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small shapes, 2 repeats (smoke run)")
    args = ap.parse_args()
    shapes = [(8, 10, 4, 16)] if args.quick else DESIGN_SHAPES
    repeats = 2 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    rows = run_benchmark(
        shapes,
        repeats=repeats,
        progress=lambda r: print(
            f"  {r.shape} {r.impl:18s} {r.mode}: {r.ms:.1f} ms", file=sys.stderr
        ),
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
