"""A statistical anchor per series that the global network corrects (ES-RNN/N-BEATS style).

Each series ``i`` gets one statistical model (``ANCHORS``: Theta, ETS, or the mean of
the two, :func:`~lstmlens.tasks.forecast_norm.statistical_anchor`). It is refitted every
``every`` rows ``r = first, first + every, ...`` on the rows ``y_i[:r]`` before that point,
the last fit on the training rows ``y_i[:fit_end_i]``; each fit's level runs forward, and
origin ``o`` takes the latest fit with ``r <= o`` (:func:`series_anchor`). So no anchor's
parameters saw the values it forecasts (training windows included: a single fit on all
training rows would hand the early windows a trend fitted on their own targets), and the
validation and test anchors come from the training rows only:

    A_i[o, h] = model_i's forecast of y_i[o + h] standing at o,   h = 0..H-1
    y^_i[o + h] = A~_i[o, h] + net(x_i(o), A~_i[o] - level)[h]    # on the network's scale

``A~`` is the anchor on the network's scale (divided by the seasonal index of the row it
forecasts and scaled by the series' scaler, as the targets are). The network's head
starts at zero, so training starts from the anchor and learns only the correction.

Anchors are kept per flat row of the panel, ``(sum T_i, H)`` floats: row
``offset_i + o`` holds ``A~_i[o]``. Rows whose fit fails (or gives a non-finite
forecast) fall back to the last value (the plain relative forecast); the series is
named in ``failed``. :func:`blend` is the other hybrid: the equal-weight mean of the
network's forecast and the statistical model's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..data.panel import Panel
from ..data.panel_windows import PanelScaler, PanelWindows
from .forecast_norm import statistical_anchor
from .global_season import SeasonalIndex

__all__ = [
    "ANCHORS",
    "AnchoredWindows",
    "blend",
    "check_kind",
    "end_anchor",
    "panel_anchor",
    "series_anchor",
]


def _theta(y: np.ndarray, fit_end: int, origins: np.ndarray, steps: int, season: int | None):
    from .statistical import quiet
    from .theta import theta

    return theta(y, fit_end, origins, steps, season, quiet=quiet)[0]


#: ``name -> fn(y, fit_end, origins, steps, season) -> (len(origins), steps)`` forecasts.
ANCHORS: dict[str, Callable[..., np.ndarray]] = {
    "theta": _theta,
    "ets": lambda y, e, o, s, m: statistical_anchor(y, e, o, s, m, "ets"),
    "ets_theta": lambda y, e, o, s, m: statistical_anchor(y, e, o, s, m, "ets_theta"),
}


def check_kind(option: str, kind: str | None) -> None:
    """``ValueError`` naming ``option`` unless ``kind`` is None or a key of ``ANCHORS``."""
    if kind is not None and kind not in ANCHORS:
        raise ValueError(f"{option} must be one of {', '.join(ANCHORS)}, got {kind!r}")


def _forecast(kind: str, y: np.ndarray, fit_end: int, origins: np.ndarray, steps: int,
              season: int | None) -> np.ndarray | None:  # fmt: skip
    """One series' anchors ``(len(origins), steps)``, or None when the fit fails."""
    check_kind("anchor", kind)
    if fit_end < 2:
        return None
    try:
        out = np.asarray(ANCHORS[kind](y, fit_end, origins, steps, season), dtype=np.float64)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError):
        return None
    return out if np.all(np.isfinite(out)) else None


def _refits(fit_end: int, first: int, every: int) -> np.ndarray:
    """Fit points ``first, first + every, ... < fit_end`` and ``fit_end`` (ascending)."""
    return np.unique(np.r_[np.arange(min(first, fit_end), fit_end, max(every, 1)), fit_end])


def series_anchor(
    y: np.ndarray, fit_end: int, horizon: int, season: int | None, kind: str,
    first: int, every: int,
) -> np.ndarray:  # fmt: skip
    """Anchors ``(T, H)`` of one series: row ``o`` is the forecast from origin ``o``
    (row 0: as row 1) of the model fitted at the latest refit point ``r <= o``
    (:func:`_refits`; rows before the first point use the first fit), or NaN where
    that fit failed. The refits keep training windows honest: no anchor's
    parameters saw the values it forecasts."""
    t = len(y)
    fits = _refits(fit_end, first, every)
    rows = np.r_[1, np.arange(1, t)]  # (T,) origin of each row
    which = np.clip(np.searchsorted(fits, rows, side="right") - 1, 0, None)  # (T,)
    out = np.full((t, horizon), np.nan)
    for k, r in enumerate(fits):
        mine = np.flatnonzero(which == k)
        a = _forecast(kind, y, int(r), rows[mine], horizon, season) if len(mine) else None
        if a is not None:
            out[mine] = a
    return out


def panel_anchor(
    panel: Panel,
    fit_end: np.ndarray,
    horizon: int,
    season: int | None,
    kind: str,
    scaler: PanelScaler,
    seasonal: SeasonalIndex | None = None,
    first: int = 1,
    every: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """``(anchors (sum T_i, H) float32 on the network's scale, failed series ids)``.

    Row ``offset_i + o`` is series ``i``'s anchor at origin ``o`` (module docstring;
    :func:`series_anchor`, refitted every ``every`` rows from row ``first`` on, the last
    fit at ``fit_end_i``: None, one fit at ``fit_end_i`` only). Rows whose fit failed
    hold the last value before the origin, deseasonalised.
    """
    out = np.empty((len(panel.values), horizon), dtype=np.float32)
    failed: list[str] = []
    for i in range(len(panel)):
        y, lo, end = panel.series(i), int(panel.offsets[i]), int(fit_end[i])
        t = len(y)
        a = series_anchor(y, end, horizon, season, kind, first if every else end, every or t)
        rows = np.r_[1, np.arange(1, t)]  # (T,) origin of each row
        if seasonal is None:
            factor, before = np.ones((t, horizon)), np.ones((t, 1))
        else:
            factor = seasonal.factors(np.full(t, i), rows, horizon)  # (T, H)
            before = seasonal.factors(np.full(t, i), rows - 1, 1)  # (T, 1)
        level = a / factor
        bad = np.asarray(~np.isfinite(level).all(axis=1))  # (T,) a failed fit: the last value
        if bad[first:].any():
            failed.append(panel.ids[i])
        level[bad] = (y[rows - 1, None] / before)[bad]
        out[lo : lo + t] = (level - scaler.mean[i]) / scaler.std[i]
    return out, failed


def end_anchor(y: np.ndarray, horizon: int, season: int | None, kind: str) -> np.ndarray | None:
    """The anchor past the end of ``y`` ``(H,)``, the model fitted on all of ``y`` (for
    ``forecast predict``); None when the fit fails."""
    a = _forecast(kind, y, len(y), np.array([len(y)]), horizon, season)
    return None if a is None else a[0]


class AnchoredWindows(PanelWindows):
    """:class:`PanelWindows` whose batches carry each window's anchor: ``(x, y, i, a)``
    with ``a`` ``(B, H)`` (row ``offset_i + o`` of ``anchors``)."""

    def __init__(self, anchors: np.ndarray, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if anchors.shape != (len(self.z), self.horizon):
            raise ValueError(f"AnchoredWindows: anchors of shape {(len(self.z), self.horizon)} "
                             f"expected, got {anchors.shape}")  # fmt: skip
        self.anchors = torch.from_numpy(np.ascontiguousarray(anchors, dtype=np.float32))

    def gather(self, k: np.ndarray) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        i, o = self.locate(k)
        rows = torch.from_numpy(self.offsets[i] + o)  # (B,) flat origin rows
        cut = self.z[rows[:, None] + self._span]  # (B, W + H)
        w = self.window
        return cut[:, :w], cut[:, w:], torch.from_numpy(i), self.anchors[rows]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:  # type: ignore[override]
        x, y, i, a = self.gather(np.array([k]))
        return x[0], y[0], int(i[0]), a[0]


def blend(
    forecasts: np.ndarray,
    panel: Panel,
    series: np.ndarray,
    fit_end: np.ndarray,
    origins: np.ndarray,
    season: int | None,
    kind: str,
) -> np.ndarray:
    """The equal-weight combination ``(f + s) / 2`` ``(B, H)`` of the network's
    ``forecasts`` ``(B, H)`` (original scale) and the statistical forecast ``s`` of
    each series ``series[b]`` from ``origins[b]``, its model fitted on its rows
    ``[0, fit_end)``; where that fit fails the network's forecast stands alone."""
    out = np.array(forecasts, dtype=np.float64)
    for b, i in enumerate(np.asarray(series)):
        y = panel.series(int(i))
        s = _forecast(kind, y, int(fit_end[b]), np.array([int(origins[b])]), out.shape[1], season)
        if s is not None:
            out[b] = 0.5 * (out[b] + s[0])
    return out
