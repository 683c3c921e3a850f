"""``lstmlens bench``: the kernel table, every variant against ``torch.nn.LSTM`` in one run.

    lstmlens bench [--shapes "B,T,I,H[,L][,bi];..."] [--variants vanilla,cifg,...]
                   [--backend NAME,...|all] [--modes train,infer] [--repeats N] [--threads N]

Default: the three shapes of docs/design.md plus (64,100,256,256) with 2 layers and
(32,200,128,256) bidirectional, every preset variant and ``layer_norm`` on the kernel ``auto``
runs here (the native one where it is built), forward+backward ("train") and inference, 5
rounds, torch's default thread count. ``--backend`` takes any registered kernel backend,
several, or ``all``. Each row gives the median time, its ratio to ``torch.nn.LSTM`` at the same
shape and mode, the GFLOP/s of the implementation's own matmuls and their percentage of this
machine's fp32 matmul peak, measured first in the same run at the same thread count (the
caption line also gives the bf16 peak where the CPU has native bf16). Every implementation is
warmed up first; all of a (shape, mode) then run in turn, round after round, so load from
other programs hits them alike. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from ..bench import (
    DESIGN_SHAPES,
    KERNEL_VARIANTS,
    Shape,
    default_impls,
    format_table,
    matmul_peak,
    run_benchmark,
)
from ..kernels import registry
from .argtypes import REPEATS, THREADS
from .common import CLIError

__all__ = ["parse_shapes", "register", "run"]

MODES = ("train", "infer")


def parse_shapes(text: str) -> list[Shape]:
    """``"64,100,256,256;64,100,256,256,2;32,200,128,256,1,bi"`` -> :class:`Shape` s: B, T, I,
    H, then optionally the number of layers and ``bi`` for a bidirectional stack."""
    shapes = []
    for part in text.split(";"):
        if not part.strip():
            continue
        fields = [f.strip() for f in part.split(",")]
        bi = fields[-1] == "bi"
        fields = fields[:-1] if bi else fields
        try:
            values = tuple(int(f) for f in fields)
        except ValueError:
            values = ()
        if len(values) not in (4, 5) or min(values) < 1:
            raise CLIError(
                f"bench: --shapes wants B,T,I,H[,LAYERS][,bi] (integers >= 1), got {part!r}"
            )
        B, T, I, H = values[:4]
        shapes.append(Shape(B, T, I, H, values[4] if len(values) == 5 else 1, bi))
    if not shapes:
        raise CLIError(f"bench: --shapes wants at least one B,T,I,H, got {text!r}")
    return shapes


def _names(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise CLIError(f"bench: {option} must be among {', '.join(allowed)}, got {text!r}")
    return names


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the ``lstmlens`` parser."""
    p = subparsers.add_parser(
        "bench",
        help="time every LSTM variant against torch.nn.LSTM (the kernel table)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--shapes",
        metavar="B,T,I,H;...",
        help="batch, steps, input and hidden sizes, optionally layers and bi, e.g. "
        '"64,100,256,256,2;32,200,128,256,1,bi" (the shapes of docs/design.md, a 2-layer and a '
        "bidirectional one)",
    )
    p.add_argument(
        "--variants",
        default=",".join(KERNEL_VARIANTS),
        metavar="NAME,...",
        help=f"variants to time (all: {','.join(KERNEL_VARIANTS)})",
    )
    p.add_argument(
        "--backend",
        metavar="NAME,...",
        help=f"registered kernel backends to time, or all (of {','.join(registry.names())}; "
        "default: the one auto runs here)",
    )
    p.add_argument("--modes", default="train,infer", metavar="train,infer", help="(both)")
    p.add_argument("--repeats", type=REPEATS, default=5, metavar="N", help="rounds (5)")
    p.add_argument(
        "--threads",
        type=THREADS,
        default=0,
        metavar="N",
        help="torch threads for every implementation and the peak; 0 keeps torch's default (0)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)
    return p


def _backend_line(backends: list[str] | None) -> str:
    """One line: each backend timed and whether it runs itself (else what runs instead)."""
    info = {b.name: b for b in registry.backends()}
    parts = []
    for name in backends or [next(n for n, b in info.items() if b.available)]:
        b = info[name]
        parts.append(name if b.available else f"{name} unavailable ({b.reason}), "
                     f"rows run {b.fallback or 'nothing'}")  # fmt: skip
    return "backend: " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    shapes = parse_shapes(args.shapes) if args.shapes else list(DESIGN_SHAPES)
    variants = _names(args.variants, KERNEL_VARIANTS, "--variants")
    modes = _names(args.modes, MODES, "--modes")
    backends = None
    if args.backend == "all":
        backends = list(registry.names())
    elif args.backend is not None:
        backends = _names(args.backend, registry.names(), "--backend")
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet = args.quiet
    if not quiet:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
              f"{_backend_line(backends)}", file=sys.stderr)  # fmt: skip

    def progress(r):
        if not quiet:
            print(f"  {r.shape.label()} {r.mode:5s} {r.impl:20s} {r.ms:9.1f} ms  x{r.ratio:.2f}",
                  file=sys.stderr)  # fmt: skip

    peak = matmul_peak()
    if not quiet:
        print(peak.line(), file=sys.stderr)
    impls = default_impls(backends, variants)
    rows = run_benchmark(shapes, impls, modes, args.repeats, progress, peak)
    print(format_table(rows, peak))
    return 0
