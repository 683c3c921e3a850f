"""Kernel timings as ratios against ``torch.nn.LSTM`` measured in the same run.

Used by ``benchmarks/kernels.py`` and ``lstmlens bench``. Nothing here asserts a speed: the
machines are shared and noisy, so the table reports medians and ratios and people read it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .layers import LSTM

__all__ = ["DESIGN_SHAPES", "Row", "format_table", "lstm_flops", "run_benchmark", "time_call"]

#: (B, T, I, H) of DESIGN section 5
DESIGN_SHAPES = ((64, 100, 256, 256), (32, 30, 1, 64), (16, 200, 128, 512))


@dataclass
class Row:
    shape: tuple[int, int, int, int]
    impl: str
    mode: str  # "train" (forward+backward) or "infer"
    ms: float
    ratio: float = float("nan")  # ms / torch.nn.LSTM ms, same shape and mode
    gflops: float = float("nan")


def lstm_flops(B: int, T: int, I: int, H: int, train: bool) -> float:
    """Matmul FLOPs of one vanilla LSTM layer (backward ~ 2x forward)."""
    fwd = 2.0 * T * B * 4 * H * (I + H)
    return 3 * fwd if train else fwd


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


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


def _impls(I: int, H: int, names: Iterable[str]) -> dict[str, nn.Module]:
    out: dict[str, nn.Module] = {}
    for name in names:
        if name == "torch.nn.LSTM":
            out[name] = nn.LSTM(I, H)
        elif name == "nn.LSTMCell loop":
            out[name] = _CellLoop(I, H)
        else:  # "reference:vanilla", "fused:cifg", "fused:layer_norm", ...
            backend, variant = name.split(":")
            ln = variant == "layer_norm"
            out[name] = LSTM(
                I, H, variant="vanilla" if ln else variant, layer_norm=ln, backend=backend
            )
    return out


def run_benchmark(
    shapes: Iterable[tuple[int, int, int, int]] = DESIGN_SHAPES,
    impls: Iterable[str] = (
        "torch.nn.LSTM",
        "nn.LSTMCell loop",
        "reference:vanilla",
        "fused:vanilla",
        "fused:peephole",
        "fused:cifg",
        "fused:layer_norm",
    ),
    modes: Iterable[str] = ("train", "infer"),
    repeats: int = 5,
    progress: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Time every implementation at every shape; the first implementation is the baseline."""
    rows: list[Row] = []
    impls = list(impls)
    for shape in shapes:
        B, T, I, H = shape
        torch.manual_seed(0)
        x = torch.randn(T, B, I)
        models = _impls(I, H, impls)
        for mode in modes:
            base = None
            for name, m in models.items():
                if mode == "train":
                    xg = x.clone().requires_grad_()

                    def step(m=m, xg=xg):
                        out, (h, c) = m(xg)
                        (out.sum() + c.sum()).backward()
                else:

                    def step(m=m, x=x):
                        with torch.inference_mode():
                            m(x)

                ms = time_call(step, repeats)
                base = ms if base is None else base
                row = Row(
                    shape,
                    name,
                    mode,
                    ms,
                    ms / base,
                    lstm_flops(B, T, I, H, mode == "train") / ms / 1e6,
                )
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def format_table(rows: list[Row]) -> str:
    """A Markdown table: one line per shape, implementation and mode."""
    lines = [
        "| (B, T, I, H) | implementation | mode | ms | x torch.nn.LSTM | GFLOP/s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.shape} | {r.impl} | {r.mode} | {r.ms:.1f} | {r.ratio:.2f} | {r.gflops:.0f} |"
        )
    return "\n".join(lines)
