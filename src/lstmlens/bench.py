"""Kernel timings as ratios against ``torch.nn.LSTM`` measured in the same run.

Used by ``benchmarks/kernels.py`` and ``lstmlens bench``. Nothing here asserts a speed: the
machines are shared and noisy, so every implementation of a (shape, mode) is run once per
round, round after round (interleaved, so a burst of load hits all of them alike), and the
table reports the median of the rounds and its ratio to the first implementation.

Implementation names: ``"torch.nn.LSTM"``, ``"nn.LSTMCell loop"`` (the naive baseline) and
``"BACKEND:VARIANT"`` for an :class:`lstmlens.LSTM` on a registered kernel backend
(``"native:cifg"``, ``"fused:layer_norm"``; ``layer_norm`` means the vanilla variant with layer
normalisation). The backends come from the registry (:func:`lstmlens.backends`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .kernels import registry
from .layers import LSTM
from .variants import PRESETS, resolve_variant

__all__ = [
    "DESIGN_SHAPES",
    "KERNEL_VARIANTS",
    "Row",
    "default_backend",
    "default_impls",
    "design_impls",
    "format_table",
    "lstm_flops",
    "run_benchmark",
    "time_call",
    "time_interleaved",
]

#: (B, T, I, H) of docs/design.md
DESIGN_SHAPES = ((64, 100, 256, 256), (32, 30, 1, 64), (16, 200, 128, 512))
#: what the kernel table covers: every preset and layer norm
KERNEL_VARIANTS = (*PRESETS, "layer_norm")


@dataclass
class Row:
    shape: tuple[int, int, int, int]  # (B, T, I, H)
    impl: str
    mode: str  # "train" (forward+backward) or "infer"
    ms: float  # median over the rounds
    ratio: float = float("nan")  # ms / the baseline's ms, same shape and mode
    gflops: float = float("nan")  # this implementation's matmul FLOPs / time


def lstm_flops(B: int, T: int, I: int, H: int, train: bool, variant: str = "vanilla") -> float:
    """Matmul FLOPs of one LSTM layer (backward ~ 2x forward).

    Per step and sequence: ``2 * nG*H * (I + H)`` for the gate projections (nG gate blocks:
    4 for vanilla, 3 for cifg/nig/nfg/nog) plus ``2 * (nS*H)^2`` for full gate recurrence.
    """
    v = resolve_variant("vanilla" if variant == "layer_norm" else variant, "lstm_flops")
    fwd = 2.0 * T * B * len(v.blocks) * H * (I + H)
    if v.full_gate_recurrence:
        fwd += 2.0 * T * B * (len(v.sigmoid_blocks) * H) ** 2
    return 3 * fwd if train else fwd


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    return time_interleaved({"fn": fn}, repeats, warmup)["fn"]


def time_interleaved(
    fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median wall time (ms) of each function, running them in turn, ``repeats`` rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


class _CellLoop(nn.Module):
    """The naive baseline: ``torch.nn.LSTMCell`` stepped from Python."""

    def __init__(self, I: int, H: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(I, H)

    def forward(self, x: torch.Tensor):
        h = c = x.new_zeros(x.shape[1], self.cell.hidden_size)
        outs = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
            outs.append(h)
        return torch.stack(outs), (h, c)


def _lstm(I: int, H: int, backend: str, variant: str) -> LSTM:
    ln = variant == "layer_norm"
    kw: dict[str, Any] = dict(variant="vanilla" if ln else variant, layer_norm=ln)
    return LSTM(I, H, backend=backend, **kw)


def _impls(I: int, H: int, names: Iterable[str]) -> dict[str, nn.Module]:
    out: dict[str, nn.Module] = {}
    for name in names:
        if name == "torch.nn.LSTM":
            out[name] = nn.LSTM(I, H)
        elif name == "nn.LSTMCell loop":
            out[name] = _CellLoop(I, H)
        else:  # "reference:vanilla", "fused:cifg", "native:layer_norm", ...
            backend, sep, variant = name.partition(":")
            if not sep or backend not in registry.names():
                raise ValueError(
                    f"run_benchmark: expected 'BACKEND:VARIANT' with BACKEND among "
                    f"{registry.names()}, got {name!r}"
                )
            out[name] = _lstm(I, H, backend, variant)
    return out


def default_backend() -> str:
    """What ``auto`` runs a CPU float32 LSTM on here: the first available registered backend."""
    return next(b.name for b in registry.backends() if b.available)


def default_impls(
    backends: str | Iterable[str] | None = None, variants: Iterable[str] = KERNEL_VARIANTS
) -> list[str]:
    """``torch.nn.LSTM`` (the baseline) then ``BACKEND:VARIANT`` for every backend and variant
    (backends: one name, several, or None for :func:`default_backend`)."""
    if backends is None:
        backends = [default_backend()]
    elif isinstance(backends, str):
        backends = [backends]
    variants = list(variants)
    return ["torch.nn.LSTM", *(f"{b}:{v}" for b in backends for v in variants)]


def design_impls() -> list[str]:
    """The README's table: baselines, every registered backend on vanilla (slowest first),
    then :func:`default_backend` on peephole, cifg and layer norm."""
    best = default_backend()
    every = [f"{b}:vanilla" for b in reversed(registry.names())]
    return ["torch.nn.LSTM", "nn.LSTMCell loop", *every,
            *(f"{best}:{v}" for v in ("peephole", "cifg", "layer_norm"))]  # fmt: skip


def run_benchmark(
    shapes: Iterable[tuple[int, int, int, int]] = DESIGN_SHAPES,
    impls: Iterable[str] | None = None,
    modes: Iterable[str] = ("train", "infer"),
    repeats: int = 5,
    progress: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Time every implementation at every shape; the first implementation is the baseline
    (``impls`` None: :func:`design_impls`)."""
    rows: list[Row] = []
    impls = design_impls() if impls is None else list(impls)
    for shape in shapes:
        B, T, I, H = shape
        torch.manual_seed(0)
        x = torch.randn(T, B, I)
        models = _impls(I, H, impls)
        for mode in modes:
            steps: dict[str, Callable[[], object]] = {}
            for name, m in models.items():
                if mode == "train":

                    def step(m=m, x=x):
                        xg = x.clone().requires_grad_()
                        out, (h, c) = m(xg)
                        (out.sum() + c.sum()).backward()
                else:

                    def step(m=m, x=x):
                        with torch.inference_mode():
                            m(x)

                steps[name] = step
            medians = time_interleaved(steps, repeats)
            base = medians[impls[0]]
            for name, ms in medians.items():
                variant = name.partition(":")[2] or "vanilla"
                flops = lstm_flops(B, T, I, H, mode == "train", variant)
                row = Row(shape, name, mode, ms, ms / base, flops / ms / 1e6)
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def format_table(rows: list[Row]) -> str:
    """A Markdown table: one line per shape, implementation and mode."""
    lines = [
        "| (B, T, I, H) | implementation | mode | ms | x baseline | GFLOP/s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.shape} | {r.impl} | {r.mode} | {r.ms:.1f} | {r.ratio:.2f} | {r.gflops:.0f} |"
        )
    return "\n".join(lines)
