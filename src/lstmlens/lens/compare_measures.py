r"""The three curves of the comparison page, each relative to its value at lag 0, in float64.

For a model read on sequences ``x_1..x_N`` at output step ``t_i`` (default each one's last):

1. **Reach to every input** (:func:`relative_reach`): at lag k, the median over the sequences
   of :math:`\mathrm{reach}_k / \mathrm{reach}_0` (:func:`~lstmlens.lens.memory_reach`).
   It answers "does the output still depend on *whatever* came k steps back?". On a task
   where most inputs are noise, a model that learned the task rightly ignores most of them,
   so this median mixes "cannot remember" with "chose not to listen".
2. **Reach to the inputs that matter** (:func:`marked_reach`): the same ratio, read only at
   the steps the task marks as needed for the answer (the two marked values of the adding
   problem; ``LongRangeTask.relevant_steps``), one value per marked step at its own lag
   ``t_i - s``. It answers the question the task asks: "can the output still be changed by
   the input it needs, k steps back?". At a lag it is summarised as the median of the marked
   values within ``MARK_WINDOW`` steps of it (a task marks only a few steps per sequence).
3. **The memory path** (:func:`relative_path`): the median over the sequences of
   :math:`\lVert \partial m_t / \partial m_{t-k} \rVert_F / \sqrt{H}`
   (:func:`~lstmlens.lens.memory_path.memory_path`; m is an LSTM's cell state, a GRU's or an
   RNN's hidden state). It answers "can the memory carry anything k steps at all?", the
   classic picture of the vanishing gradient against the constant error carousel.

Every value is an exact derivative (no sampling, no finite differences); the tests check
each against central finite differences in float64.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .memory_path import memory_path, no_path
from .reach import memory_reach
from .trace import _find_module

__all__ = [
    "MARK_WINDOW",
    "Measures",
    "marked_reach",
    "measure",
    "relative_path",
    "relative_reach",
    "window_median",
]

MARK_WINDOW = 5  # a lag's marked-reach summary: the marked values within this many steps


class Measures(NamedTuple):
    """One model's curves: ``reach`` (median, every input) and ``path`` (median, the memory;
    ``None`` where the model has no single path) by lag, ``marked`` ``(M, 2)`` rows of
    (lag, reach / reach_0) at the marked steps (``None`` without marks), ``sequences`` N."""

    reach: np.ndarray
    marked: np.ndarray | None
    path: np.ndarray | None
    sequences: int


def _wide(x: Any) -> Any:
    """``x`` with its floating tensors in float64 (token ids and tuples' other items kept)."""
    if isinstance(x, tuple):
        return tuple(map(_wide, x))
    return x.double() if hasattr(x, "is_floating_point") and x.is_floating_point() else x


def _median_by_lag(curves: Sequence[np.ndarray]) -> np.ndarray:
    lags = min(len(c) for c in curves)  # aligned by lag, cut to the shortest
    return np.median(np.stack([c[:lags] for c in curves]), axis=0)


def _ratio(curve: np.ndarray) -> np.ndarray:
    return curve / curve[0] if curve[0] > 0 else curve


def _sequences(x: Any, owner: str) -> list[Any]:
    sequences = x if isinstance(x, list) else [x]
    if not sequences:
        raise ValueError(f"{owner}: expected at least one sequence, got an empty list")
    return sequences


def _reach_ratios(wide: Any, sequences: list[Any], t: int | None) -> list[np.ndarray]:
    return [_ratio(memory_reach(wide, _wide(s), -1 if t is None else t)) for s in sequences]


def relative_reach(model: Any, x: Any, t: int | None = None) -> tuple[np.ndarray, int]:
    """reach_k / reach_0 by lag k (median over sequences), and the number of sequences.

    ``x`` is one sequence as :func:`~lstmlens.lens.memory_reach` takes it, or a list of
    them (curves aligned by lag and cut to the shortest). Computed on a float64 copy.
    """
    sequences = _sequences(x, "relative_reach")
    ratios = _reach_ratios(copy.deepcopy(model).double(), sequences, t)
    return _median_by_lag(ratios), len(ratios)


def _marked_rows(ratios: list[np.ndarray], relevant: Sequence[Any]) -> np.ndarray:
    rows = []
    for ratio, marks in zip(ratios, relevant, strict=True):
        t = len(ratio) - 1
        for s in np.flatnonzero(np.asarray(marks, dtype=bool)):
            if s <= t:
                rows.append((t - s, ratio[t - s]))
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def marked_reach(model: Any, x: Any, relevant: Sequence[Any], t: int | None = None) -> np.ndarray:
    """``(M, 2)``: (lag, reach_lag / reach_0) at every marked step of every sequence.

    ``relevant`` holds, per sequence of ``x``, a bool vector over its steps (True where the
    task needs the input); marked steps after ``t`` are left out. Computed in float64.
    """
    sequences = _sequences(x, "marked_reach")
    if len(relevant) != len(sequences):
        raise ValueError(
            f"marked_reach: {len(sequences)} sequences but {len(relevant)} marks vectors"
        )
    return _marked_rows(_reach_ratios(copy.deepcopy(model).double(), sequences, t), relevant)


def relative_path(model: Any, x: Any, t: int | None = None) -> np.ndarray:
    """path_k / path_0 by lag k, the median over the sequences of ``x`` (float64)."""
    wide = copy.deepcopy(model).double()
    curves = [
        _ratio(memory_path(wide, _wide(s), -1 if t is None else t))
        for s in _sequences(x, "relative_path")
    ]
    return _median_by_lag(curves)


def window_median(marked: np.ndarray, lag: int, window: int = MARK_WINDOW) -> float:
    """The median of the marked values whose lag is within ``window`` of ``lag`` (NaN if none)."""
    near = marked[np.abs(marked[:, 0] - lag) <= window, 1]
    return float(np.median(near)) if near.size else float("nan")


def measure(model: Any, x: Any, t: int | None = None, relevant: Sequence[Any] | None = None):
    """All three curves of one model (:class:`Measures`); the reach Jacobians are taken once.

    The memory path is ``None`` for a model without a single path (bidirectional, the
    full-gate-recurrence LSTM).
    """
    sequences = _sequences(x, "measure")
    wide = copy.deepcopy(model).double()
    ratios = _reach_ratios(wide, sequences, t)
    marked = None if relevant is None else _marked_rows(ratios, relevant)
    has_path = no_path(_find_module(wide, None)) is None
    path = relative_path(wide, sequences, t) if has_path else None
    return Measures(_median_by_lag(ratios), marked, path, len(sequences))
