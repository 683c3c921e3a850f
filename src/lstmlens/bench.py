"""Kernel timings as ratios against ``torch.nn.LSTM`` measured in the same run.

Used by ``benchmarks/kernels.py`` and ``lstmlens bench``. Nothing here asserts a speed: the
machines are shared and noisy, so every implementation of a (shape, mode) is first warmed up
until its call time stops falling (:func:`warm_up`: the ``torch.nn.LSTM`` baseline included,
whose first training step costs ~100x a later one), then run once per round, round after round
(interleaved, so a burst of load hits all of them alike), and the table reports the median of
the rounds, its ratio to the first implementation, the matmul GFLOP/s it reaches
(:func:`shape_flops`) and that as a percentage of the machine's fp32 matmul peak measured in
the same run (:func:`matmul_peak`).

Implementation names: ``"torch.nn.LSTM"``, ``"nn.LSTMCell loop"`` (the naive baseline, single
layer-direction shapes only) and ``"BACKEND:VARIANT"`` for an :class:`lstmlens.LSTM` on a
registered kernel backend (``"native:cifg"``, ``"fused:layer_norm"``; ``layer_norm`` means the
vanilla variant with layer normalisation). The backends come from the registry
(:func:`lstmlens.backends`)."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from .kernels import registry
from .layers import LSTM
from .precision import cpu_model, native_bf16
from .variants import PRESETS, resolve_variant

__all__ = [
    "DESIGN_SHAPES",
    "KERNEL_VARIANTS",
    "Peak",
    "Row",
    "Shape",
    "default_backend",
    "default_impls",
    "design_impls",
    "format_table",
    "lstm_flops",
    "matmul_peak",
    "run_benchmark",
    "shape_flops",
    "time_call",
    "time_interleaved",
    "warm_up",
]


class Shape(NamedTuple):
    """One benchmark problem: (B, T, I, H) and the stack around it."""

    B: int
    T: int
    I: int
    H: int
    layers: int = 1
    bidirectional: bool = False

    def label(self) -> str:
        """``"(64, 100, 256, 256)"``, with `` x2`` for 2 layers and `` bi`` when bidirectional."""
        text = str(tuple(self[:4]))
        if self.layers > 1:
            text += f" x{self.layers}"
        return text + (" bi" if self.bidirectional else "")


#: (B, T, I, H) of docs/design.md, then a 2-layer stack and a bidirectional layer (issue 16)
DESIGN_SHAPES = (
    Shape(64, 100, 256, 256),
    Shape(32, 30, 1, 64),
    Shape(16, 200, 128, 512),
    Shape(64, 100, 256, 256, layers=2),
    Shape(32, 200, 128, 256, bidirectional=True),
)
#: what the kernel table covers: every preset and layer norm
KERNEL_VARIANTS = (*PRESETS, "layer_norm")


@dataclass
class Row:
    shape: Shape
    impl: str
    mode: str  # "train" (forward+backward) or "infer"
    ms: float  # median over the rounds
    ratio: float = float("nan")  # ms / the baseline's ms, same shape and mode
    gflops: float = float("nan")  # this implementation's matmul FLOPs / time
    peak: float = float("nan")  # gflops as a percentage of the measured fp32 matmul peak


def lstm_flops(B: int, T: int, I: int, H: int, train: bool, variant: str = "vanilla") -> float:
    """Matmul FLOPs of one LSTM layer-direction.

    Forward, per step and sequence: ``2 * nG*H * (I + H)`` for the gate projections (nG gate
    blocks: 4 for vanilla, 3 for cifg/nig/nfg/nog) plus ``2 * (nS*H)^2`` for full gate
    recurrence (nS sigmoid gates). Training (forward + backward) counts ``3x`` that: the
    backward runs two products of the forward's size per product (input and weight gradients).
    Element-wise gate maths is not counted.
    """
    v = resolve_variant("vanilla" if variant == "layer_norm" else variant, "lstm_flops")
    fwd = 2.0 * T * B * len(v.blocks) * H * (I + H)
    if v.full_gate_recurrence:
        fwd += 2.0 * T * B * (len(v.sigmoid_blocks) * H) ** 2
    return 3 * fwd if train else fwd


def shape_flops(shape: Shape, train: bool, variant: str = "vanilla") -> float:
    """:func:`lstm_flops` summed over a stack: layer 0 reads I features, every later layer
    ``dirs * H``, and each of the ``dirs`` directions counts once."""
    B, T, I, H, layers, bi = shape
    dirs = 2 if bi else 1
    return sum(
        dirs * lstm_flops(B, T, I if layer == 0 else dirs * H, H, train, variant)
        for layer in range(layers)
    )


def warm_up(fn: Callable[[], object], min_calls: int = 3, max_calls: int = 10) -> int:
    """Call ``fn`` until its time stops falling: at least ``min_calls`` times, then until a call
    is no faster than 0.8x the one before (first calls pay for allocator growth, oneDNN
    primitive creation and lazy initialisation: ``torch.nn.LSTM``'s first training step takes
    ~100x a later one). Returns the number of calls."""
    last = float("inf")
    for n in range(1, max_calls + 1):
        t0 = time.perf_counter()
        fn()
        took = time.perf_counter() - t0
        if n >= min_calls and took >= 0.8 * last:
            return n
        last = took
    return max_calls


def time_call(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after :func:`warm_up`."""
    return time_interleaved({"fn": fn}, repeats)["fn"]


def time_interleaved(fns: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time (ms) of each function, each warmed up (:func:`warm_up`), then run in
    turn, ``repeats`` rounds. Round r starts at the r-th function (a rotation): on a loaded
    machine another process's time slice can recur once a round, and would otherwise land on
    the same function every round."""
    for fn in fns.values():
        warm_up(fn)
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = fns[name]
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


@dataclass(frozen=True)
class Peak:
    """The machine's measured matmul throughput (GFLOP/s) at the bench's thread count."""

    threads: int
    fp32: float
    bf16: float | None  # None where the CPU has no native bfloat16 (not measured)

    def line(self) -> str:
        bf16 = "not native here" if self.bf16 is None else f"{self.bf16:.0f} GFLOP/s"
        return (f"matmul peak ({self.threads} threads, best torch.matmul n^3 of n in {PEAK_SIZES}): "
                f"fp32 {self.fp32:.0f} GFLOP/s, bf16 {bf16}; CPU: {cpu_model()}")  # fmt: skip


#: square matmul sizes tried for the peak (the best counts: on a shared machine the larger one
#: can fall out of cache and run at half the smaller one's rate)
PEAK_SIZES = (512, 1024)


def matmul_peak(sizes: Sequence[int] = PEAK_SIZES, repeats: int = 5) -> Peak:
    """Best GFLOP/s of an (n, n) @ (n, n) ``torch.matmul`` over ``sizes`` and ``repeats`` calls,
    in fp32, and in bf16 where the CPU has it natively (:func:`lstmlens.precision.native_bf16`).
    """

    def best(dtype: torch.dtype) -> float:
        rates = []
        for n in sizes:
            mm = functools.partial(torch.matmul, torch.randn(n, n).to(dtype),
                                   torch.randn(n, n).to(dtype))  # fmt: skip
            warm_up(mm)
            seconds = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                mm()
                seconds.append(time.perf_counter() - t0)
            rates.append(2.0 * n**3 / min(seconds) / 1e9)
        return max(rates)

    return Peak(torch.get_num_threads(), best(torch.float32),
                best(torch.bfloat16) if native_bf16() else None)  # fmt: skip


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


def _lstm(shape: Shape, backend: str, variant: str) -> LSTM:
    ln = variant == "layer_norm"
    kw: dict[str, Any] = dict(variant="vanilla" if ln else variant, layer_norm=ln)
    return LSTM(shape.I, shape.H, shape.layers, bidirectional=shape.bidirectional,
                backend=backend, **kw)  # fmt: skip


def _impls(shape: Shape, names: Iterable[str]) -> dict[str, nn.Module]:
    """The modules to time at ``shape``; the cell loop (one layer, one direction) only where
    the shape is a single layer-direction."""
    out: dict[str, nn.Module] = {}
    single = shape.layers == 1 and not shape.bidirectional
    for name in names:
        if name == "torch.nn.LSTM":
            out[name] = nn.LSTM(shape.I, shape.H, shape.layers,
                                bidirectional=shape.bidirectional)  # fmt: skip
        elif name == "nn.LSTMCell loop":
            if single:
                out[name] = _CellLoop(shape.I, shape.H)
        else:  # "reference:vanilla", "fused:cifg", "native:layer_norm", ...
            backend, sep, variant = name.partition(":")
            if not sep or backend not in registry.names():
                raise ValueError(
                    f"run_benchmark: expected 'BACKEND:VARIANT' with BACKEND among "
                    f"{registry.names()}, got {name!r}"
                )
            out[name] = _lstm(shape, backend, variant)
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


def _step(m: nn.Module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    """One call of ``m`` on ``x``: forward+backward ("train") or an inference forward."""
    if mode == "train":

        def step():
            xg = x.clone().requires_grad_()
            out, (h, c) = m(xg)
            (out.sum() + c.sum()).backward()
    else:

        def step():
            with torch.inference_mode():
                m(x)

    return step


def run_benchmark(
    shapes: Iterable[Sequence[Any]] = DESIGN_SHAPES,
    impls: Iterable[str] | None = None,
    modes: Iterable[str] = ("train", "infer"),
    repeats: int = 5,
    progress: Callable[[Row], None] | None = None,
    peak: Peak | None = None,
) -> list[Row]:
    """Time every implementation at every shape (a :class:`Shape` or a plain (B, T, I, H));
    the first implementation is the baseline (``impls`` None: :func:`design_impls`). With
    ``peak`` each row also gets its percentage of the fp32 matmul peak."""
    rows: list[Row] = []
    impls = design_impls() if impls is None else list(impls)
    for shape in map(lambda s: Shape(*s), shapes):
        torch.manual_seed(0)
        x = torch.randn(shape.T, shape.B, shape.I)
        models = _impls(shape, impls)
        for mode in modes:
            steps = {name: _step(m, x, mode) for name, m in models.items()}
            medians = time_interleaved(steps, repeats)
            base = medians[impls[0]]
            for name, ms in medians.items():
                variant = name.partition(":")[2] or "vanilla"
                gflops = shape_flops(shape, mode == "train", variant) / ms / 1e6
                pct = 100 * gflops / peak.fp32 if peak else float("nan")
                row = Row(shape, name, mode, ms, ms / base, gflops, pct)
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def format_table(rows: list[Row], peak: Peak | None = None) -> str:
    """A Markdown table: one line per shape, implementation and mode (with ``peak``: a caption
    line naming it first)."""
    lines = [peak.line(), ""] if peak else []
    lines += [
        "| (B, T, I, H) | implementation | mode | ms | x torch.nn.LSTM | GFLOP/s | % fp32 peak |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {Shape(*r.shape).label()} | {r.impl} | {r.mode} | {r.ms:.1f} "
                     f"| {r.ratio:.2f} | {r.gflops:.0f} | {r.peak:.0f} |")  # fmt: skip
    return "\n".join(lines)
