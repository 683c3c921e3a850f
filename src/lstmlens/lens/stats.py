"""Numbers about gates: saturation, means, memory half-life, and units that track a signal.

Every function takes the activations of one gate as a plain tensor or array, shaped
``(T, H)`` (one sequence) or ``(T, B, H)`` (a batch; ``(B, T, H)`` with
``batch_first=True``), where T is the number of steps and H the number of units. Padded
steps of a packed batch are left out with ``lengths`` (B,) or a boolean ``mask``
shaped like the leading dims. Every statistic is then taken over the N valid steps,
per unit, in float64.

Saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
Networks", section 4.2): a sigmoid gate is *left-saturated* at a step when its value is
below 0.1 and *right-saturated* when above 0.9::

    left[u]  = #{t : a[t, u] < 0.1} / N          right[u] = #{t : a[t, u] > 0.9} / N

Memory half-life of the forget gate: the cell keeps ``f`` of its content per step, so
after k steps at a constant f it keeps ``f**k``, which is one half at::

    k = ln 0.5 / ln f        (f -> 1: k -> inf, f -> 0: k -> 0)

Correlation with a signal s (position in line, inside quotes, ...) is Pearson's r per
unit over the same valid steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SIGMOID_GATES",
    "Saturation",
    "UnitScore",
    "correlation",
    "half_life",
    "half_life_of",
    "interpretable_units",
    "mean_activation",
    "one_sequence",
    "saturation",
    "series_signals",
    "steps",
    "text_signals",
    "top_correlated",
]

#: Gates whose values lie in [0, 1] (a sigmoid), where saturation is meaningful.
SIGMOID_GATES = ("input", "forget", "output", "reset", "update")

_OPEN_BRACKETS = "([{"
_CLOSE_BRACKETS = ")]}"


@dataclass(frozen=True)
class Saturation:
    """Fractions of valid steps at which each unit is saturated; both arrays are (H,)."""

    left: np.ndarray  # value < low  (the gate is shut)
    right: np.ndarray  # value > high (the gate is wide open)


@dataclass(frozen=True)
class UnitScore:
    """One unit of one gate, and how well it follows a named signal (Pearson's r)."""

    unit: int
    r: float
    signal: str = ""
    gate: str = ""
    layer: int = 0
    direction: int = 0


def _array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a tensor or array of numbers, got {type(x)!r}") from err


def _valid(
    shape: tuple[int, ...], lengths: Any, mask: Any, batch_first: bool, name: str
) -> np.ndarray | None:
    """Boolean (T,) or (T, B) of valid steps, in time-major order; None when all are valid."""
    if lengths is not None and mask is not None:
        raise ValueError(f"{name}: give lengths or mask, not both")
    if lengths is not None:
        if len(shape) != 2:
            raise ValueError(
                f"{name}: lengths needs batched values (T, B, H), got {len(shape) + 1}-D"
            )
        lens = _array(lengths, name).astype(np.int64).reshape(-1)
        if lens.shape != (shape[1],):
            raise ValueError(f"{name}: expected lengths of shape ({shape[1]},), got {lens.shape}")
        return np.arange(shape[0])[:, None] < lens[None, :]  # (T, B)
    if mask is None:
        return None
    m = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask).astype(bool)
    if batch_first and m.ndim == 2:
        m = m.T  # (B, T) -> (T, B)
    if m.shape != shape:
        raise ValueError(f"{name}: expected a mask of shape {shape} (time-major), got {m.shape}")
    return m


def steps(
    values: Any, *, lengths: Any = None, mask: Any = None, batch_first: bool = False
) -> np.ndarray:
    """The valid steps of one gate as a float64 array (N, H), time-major within each sequence."""
    a = _array(values, "steps")
    if a.ndim == 3:
        if batch_first:
            a = a.transpose(1, 0, 2)  # (B, T, H) -> (T, B, H)
    elif a.ndim != 2:
        raise ValueError(f"steps: expected values shaped (T, H) or (T, B, H), got shape {a.shape}")
    valid = _valid(a.shape[:-1], lengths, mask, batch_first, "steps")
    if valid is None:
        return a.reshape(-1, a.shape[-1])  # (T*B, H)
    return a[valid]  # (N, H)


def _signal_steps(
    signal: Any, lead: tuple[int, ...], lengths: Any, mask: Any, bf: bool
) -> np.ndarray:
    s = _array(signal, "signal")
    if bf and s.ndim == 2:
        s = s.T  # (B, T) -> (T, B)
    if s.shape != lead:
        raise ValueError(
            f"correlation: expected a signal of shape {lead} (time-major), got {s.shape}"
        )
    valid = _valid(lead, lengths, mask, bf, "correlation")
    return s.reshape(-1) if valid is None else s[valid]  # (N,)


def _lead_shape(values: Any, batch_first: bool) -> tuple[int, ...]:
    shape = tuple(values.shape) if hasattr(values, "shape") else np.shape(values)
    if len(shape) == 3 and batch_first:
        return (shape[1], shape[0])
    return shape[:-1]


def one_sequence(
    values: Any, batch_index: int = 0, *, lengths: Any = None, batch_first: bool = False
) -> np.ndarray:
    """Sequence ``batch_index`` of one gate as float64 (T_b, H), cut to its length if given.

    ``values`` is (T, H) (then ``batch_index`` must be 0), (T, B, H), or (B, T, H) with
    ``batch_first``.
    """
    a = _array(values, "one_sequence")
    if a.ndim == 2:
        if batch_index != 0:
            raise ValueError(
                f"one_sequence: unbatched values (T, H) have only sequence 0, got {batch_index}"
            )
        return a
    if a.ndim != 3:
        raise ValueError(f"one_sequence: expected (T, H) or (T, B, H) values, got shape {a.shape}")
    if batch_first:
        a = a.transpose(1, 0, 2)  # (B, T, H) -> (T, B, H)
    if not 0 <= batch_index < a.shape[1]:
        raise ValueError(
            f"one_sequence: batch_index must be in [0, {a.shape[1]}), got {batch_index}"
        )
    seq = a[:, batch_index]  # (T, H)
    if lengths is not None:
        seq = seq[: int(_array(lengths, "one_sequence").reshape(-1)[batch_index])]
    return seq


def saturation(
    values: Any,
    low: float = 0.1,
    high: float = 0.9,
    *,
    lengths: Any = None,
    mask: Any = None,
    batch_first: bool = False,
) -> Saturation:
    """Per unit, the fraction of steps with value < ``low`` (left) and > ``high`` (right)."""
    if not low < high:
        raise ValueError(f"saturation: expected low < high, got low={low}, high={high}")
    a = steps(values, lengths=lengths, mask=mask, batch_first=batch_first)  # (N, H)
    if a.shape[0] == 0:
        raise ValueError("saturation: no valid steps")
    return Saturation(left=(a < low).mean(axis=0), right=(a > high).mean(axis=0))


def mean_activation(
    values: Any, *, lengths: Any = None, mask: Any = None, batch_first: bool = False
) -> np.ndarray:
    """Per unit, the mean value over the valid steps: (H,)."""
    a = steps(values, lengths=lengths, mask=mask, batch_first=batch_first)  # (N, H)
    if a.shape[0] == 0:
        raise ValueError("mean_activation: no valid steps")
    return a.mean(axis=0)


def half_life_of(f: Any) -> np.ndarray:
    """Elementwise ``ln 0.5 / ln f``: steps until a cell kept at rate f holds half its content.

    f = 1 gives ``inf`` (nothing is forgotten), f = 0 gives 0 (all is forgotten at once).
    Values must lie in [0, 1]; float rounding up to 1e-6 outside is clipped.
    """
    a = _array(f, "half_life_of")
    if a.size and (np.nanmin(a) < -1e-6 or np.nanmax(a) > 1 + 1e-6):
        raise ValueError(
            f"half_life_of: expected forget-gate values in [0, 1], "
            f"got values in [{np.nanmin(a):.4g}, {np.nanmax(a):.4g}]"
        )
    a = np.clip(a, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        log_f = np.log(a)  # -inf where f == 0, 0 where f == 1
    return _half_life_from_log(log_f)


def _half_life_from_log(log_f: np.ndarray) -> np.ndarray:
    safe = np.where(log_f < 0, log_f, -1.0)  # avoid 0-division; those entries are replaced
    return np.where(log_f < 0, math.log(0.5) / safe, np.inf)


def half_life(
    forget: Any,
    *,
    reduce: str = "geometric",
    lengths: Any = None,
    mask: Any = None,
    batch_first: bool = False,
) -> np.ndarray:
    """Per unit, the forget gate's memory half-life in steps: (H,).

    ``reduce="geometric"`` (default) uses the rate the unit keeps on average as it
    compounds, the geometric mean of f over the valid steps::

        k[u] = ln 0.5 / mean_t ln f[t, u]

    so a unit that is nearly always open but resets now and then gets a short half-life.
    ``reduce="median"`` uses the median f instead (the half-life at a typical step, blind
    to rare resets). A unit with f = 1 throughout has ``inf``; any f = 0 step makes the
    geometric half-life 0.
    """
    if reduce not in ("geometric", "median"):
        raise ValueError(f"half_life: reduce must be 'geometric' or 'median', got {reduce!r}")
    f = steps(forget, lengths=lengths, mask=mask, batch_first=batch_first)  # (N, H)
    if f.shape[0] == 0:
        raise ValueError("half_life: no valid steps")
    if reduce == "median":
        return half_life_of(np.median(f, axis=0))
    if np.nanmin(f) < -1e-6 or np.nanmax(f) > 1 + 1e-6:
        raise ValueError(
            f"half_life: expected forget-gate values in [0, 1], "
            f"got values in [{f.min():.4g}, {f.max():.4g}]"
        )
    with np.errstate(divide="ignore"):
        log_f = np.log(np.clip(f, 0.0, 1.0))  # (N, H)
    return _half_life_from_log(log_f.mean(axis=0))


def correlation(
    values: Any, signal: Any, *, lengths: Any = None, mask: Any = None, batch_first: bool = False
) -> np.ndarray:
    """Pearson's r between each unit and ``signal`` over the valid steps: (H,).

    ``signal`` is shaped like the leading dims of ``values``: (T,) or (T, B) ((B, T) with
    ``batch_first``). A unit (or a signal) that never changes has r = nan.
    """
    a = steps(values, lengths=lengths, mask=mask, batch_first=batch_first)  # (N, H)
    s = _signal_steps(signal, _lead_shape(values, batch_first), lengths, mask, batch_first)
    a = a - a.mean(axis=0)
    s = s - s.mean()
    denom = np.sqrt((a * a).sum(axis=0) * (s * s).sum())  # (H,)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * s[:, None]).sum(axis=0) / denom
    return np.where(denom > 0, np.clip(r, -1.0, 1.0), np.nan)


def top_correlated(
    values: Any,
    signal: Any,
    k: int = 5,
    *,
    name: str = "",
    lengths: Any = None,
    mask: Any = None,
    batch_first: bool = False,
) -> list[UnitScore]:
    """The ``k`` units whose values follow ``signal`` most closely (largest |r|, nan left out)."""
    r = correlation(values, signal, lengths=lengths, mask=mask, batch_first=batch_first)
    if k < 1:
        raise ValueError(f"top_correlated: expected k >= 1, got {k}")
    strength = np.where(np.isnan(r), -1.0, np.abs(r))  # nan sorts last
    order = [int(u) for u in np.argsort(-strength, kind="stable") if not np.isnan(r[u])]
    return [UnitScore(unit=u, r=float(r[u]), signal=name) for u in order[:k]]


def interpretable_units(
    trace: Any,
    signals: Mapping[str, Any],
    k: int = 10,
    *,
    gates: Sequence[str] = ("cell", "hidden"),
    batch_index: int | None = None,
) -> list[UnitScore]:
    """The ``k`` (layer, direction, gate, unit) that best follow any of ``signals``.

    ``trace`` is a lens trace (``gate(name, layer, direction)``, ``num_layers``,
    ``num_directions``, ``gate_names``, ``batch_first``, ``lengths``). Each signal is
    shaped like the trace's leading dims, or with ``batch_index`` is (T_b,) for that one
    sequence. Each unit appears once, with its best signal.
    """
    if k < 1:
        raise ValueError(f"interpretable_units: expected k >= 1, got {k}")
    names = [g for g in gates if g in trace.gate_names]
    best: dict[tuple[int, int, str, int], UnitScore] = {}
    for layer in range(trace.num_layers):
        for direction in range(trace.num_directions):
            for gate in names:
                values = trace.gate(gate, layer=layer, direction=direction)
                where: dict[str, Any] = {"lengths": trace.lengths, "batch_first": trace.batch_first}
                if batch_index is not None:
                    values = one_sequence(values, batch_index, **where)  # (T_b, H)
                    where = {}
                for sig_name, signal in signals.items():
                    r = correlation(values, signal, **where)
                    for u in np.flatnonzero(~np.isnan(r)):
                        key = (layer, direction, gate, int(u))
                        if key not in best or abs(r[u]) > abs(best[key].r):
                            best[key] = UnitScore(
                                int(u), float(r[u]), sig_name, gate, layer, direction
                            )
    return sorted(best.values(), key=lambda s: -abs(s.r))[:k]  # stable: ties keep layer order


def text_signals(text: str | Sequence[str]) -> dict[str, np.ndarray]:
    """Built-in signals of a text, each (T,) float64, read *after* each step's text.

    ``text`` is a string (one step per character) or a sequence of tokens (one step per
    token, the signal read at the token's last character). The signals:

    - ``position_in_line``: characters since the last newline (``"ab\\ncd"`` -> 1 2 0 1 2)
    - ``inside_quotes``: 1 inside a double-quoted span, opening quote included
      (``a"b"c`` -> 0 1 1 0 0); typographic quotes open with U+201C and close with U+201D
    - ``inside_brackets``: 1 while a ( [ { is open, opener included, closer excluded
    """
    pieces = list(text) if isinstance(text, str) else [str(t) for t in text]
    # state after each character of the joined text
    column, quoted, depth = 0, False, 0
    col_after, quote_after, bracket_after = [], [], []
    for piece in pieces:
        for ch in piece:
            column = 0 if ch == "\n" else column + 1
            if ch == '"':
                quoted = not quoted
            elif ch == "\u201c":
                quoted = True
            elif ch == "\u201d":
                quoted = False
            if ch in _OPEN_BRACKETS:
                depth += 1
            elif ch in _CLOSE_BRACKETS:
                depth = max(depth - 1, 0)
        col_after.append(column)
        quote_after.append(float(quoted))
        bracket_after.append(float(depth > 0))
    return {
        "position_in_line": np.asarray(col_after, dtype=np.float64),
        "inside_quotes": np.asarray(quote_after, dtype=np.float64),
        "inside_brackets": np.asarray(bracket_after, dtype=np.float64),
    }


def series_signals(series: Any) -> dict[str, np.ndarray]:
    """Built-in signals of a series y (T,): ``value`` = y, ``change`` = y_t - y_{t-1} (0 at t=0)."""
    y = _array(series, "series_signals").reshape(-1)
    change = np.concatenate([[0.0], np.diff(y)]) if y.size else y
    return {"value": y, "change": change}
