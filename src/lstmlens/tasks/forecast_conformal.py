"""Split-conformal calibration of forecast quantiles (conformalised quantile regression).

For each pair of outer levels ``(tau_i, tau_{Q-1-i})`` (nominal coverage
``c_i = tau_{Q-1-i} - tau_i``), on the validation forecasts ``q`` ``(N, S, Q)`` and
values ``y`` ``(N, S)`` (NaN where unknown), at step ``h = 0..S-1``:

    g(h) = (h + 1) ** GROWTH
    E    = max(q_lo - y, y - q_hi) / g(h)              # conformity score, horizon-scaled
    d_i  = Quantile(E, c_i)                            # over all known (origin, step)
    q_lo -= d_i g(h);  q_hi += d_i g(h)                # the calibrated interval

``d_i`` may be negative (an interval that was too wide narrows). The scale ``g`` lets
scores from short and long steps be pooled: forecast errors grow with the step (like
``sqrt(h)`` for a random walk, faster when the level or trend is misjudged).
``GROWTH = 0.5`` was chosen on 25 + 25 series of half A of the M3 benchmark sample,
where the calibration set is the anchor's errors from every origin of the training and
validation parts (the net fell back to its anchor): 80% coverage 85% / 78% (monthly /
quarterly) and pinball 0.233 / 0.468 against 87% / 76% and 0.286 / 0.486 with
``GROWTH = 1`` (ETS's own interval: 83% / 74%, 0.239 / 0.486). Everything is on the
model scale (for a log model the interval widens multiplicatively).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GROWTH", "calibrate", "pairs", "widen"]

#: Exponent of the horizon scale ``g(h) = (h + 1) ** GROWTH`` of the conformity scores.
GROWTH = 0.5


def pairs(levels: tuple[float, ...]) -> list[tuple[int, int]]:
    """Index pairs ``(lo, hi)`` of the outer levels, outermost first (the median excluded)."""
    q = len(levels)
    return [(i, q - 1 - i) for i in range(q // 2) if levels[i] < 0.5 < levels[q - 1 - i]]


def calibrate(q: np.ndarray, y: np.ndarray, levels: tuple[float, ...]) -> list[float]:
    """The widening ``d_i`` of each pair (module docstring); ``q`` ``(N, S, Q)``, ``y`` ``(N, S)``."""
    q, y = np.asarray(q, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if q.ndim != 3 or y.shape != q.shape[:2]:
        raise ValueError(f"calibrate: expected q (N, S, Q) and y (N, S), got {q.shape}, {y.shape}")
    scale = np.arange(1, q.shape[1] + 1)[None, :] ** GROWTH  # (1, S)
    known = np.isfinite(y)
    if not known.any():
        return []
    out = []
    for lo, hi in pairs(levels):
        score = np.maximum(q[..., lo] - y, y - q[..., hi]) / scale  # (N, S)
        out.append(float(np.quantile(score[known], levels[hi] - levels[lo])))
    return out


def widen(q: np.ndarray, deltas: list[float]) -> np.ndarray:
    """Apply the widening to quantiles ``(N, steps, Q)`` (sorted); returns a new array."""
    out = np.array(q, dtype=np.float64, copy=True)
    levels_q = out.shape[-1]
    scale = np.arange(1, out.shape[1] + 1)[None, :] ** GROWTH  # (1, steps)
    for i, d in enumerate(deltas):
        lo, hi = i, levels_q - 1 - i
        if lo >= hi:
            break
        out[..., lo] -= d * scale
        out[..., hi] += d * scale
    return np.sort(out, axis=-1)
