"""How a window of a series becomes the network's input, and its output a forecast.

Notation: ``u`` is the target on the model scale (``log y`` when configured, then
standardised on the training rows), ``m`` the season, ``s[p]`` (``p = 0..m-1``) the
seasonal indices of :func:`seasonal_indices` (zeros when the series is not
deseasonalised), ``p(t) = t mod m`` the phase of row ``t``. ES-RNN-style:

    d[t]   = u[t] - s[p(t)]                          # deseasonalised level
    x[o]   = d[o-W : o] - d[o-1]                     # input window, relative to its last level
    a[o,h] = anchor for u[o+h], h = 0..S-1           # what the network corrects
    u^[o+h] = a[o,h] + net(x[o])[h]                  # the forecast

Anchors (``ANCHORS``): ``level`` ``a = d[o-1] + s[p(o+h)]`` (the last deseasonalised level,
reseasonalised; with ``s = 0`` the last value: the old relative mode); ``seasonal``
``a = u[o+h - m*(h//m + 1)]`` (seasonal naive); ``ets`` the Holt-Winters forecast of ``u``
from ``o`` (damped trend, additive season, parameters fitted on the training rows only;
residual learning over a strong baseline); ``ets_theta`` the mean of that and the Theta
forecast of ``u`` (both from one fit each, run forward over every origin:
:func:`statistical_anchor`); ``none`` ``a = 0`` with absolute inputs
``x = d[o-W:o]`` (the old ``relative=False``). With a zero-initialised head the network
starts from its anchor, so it only learns the correction.

Rows before the start of the series are the first row repeated (edge padding), so
short series still give windows of the full length ``W``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ANCHORS",
    "STATISTICAL",
    "anchors",
    "gather",
    "inputs",
    "is_seasonal",
    "seasonal_indices",
    "statistical_anchor",
]

ANCHORS = ("level", "seasonal", "ets", "theta", "ets_theta", "theta_arima", "none")
#: The anchors that are a statistical model's forecast (added by :func:`statistical_anchor`):
#: the models each one averages.
PARTS = {
    "ets": ("ets",),
    "theta": ("theta",),
    "ets_theta": ("ets", "theta"),
    "theta_arima": ("theta", "arima"),
}
STATISTICAL = tuple(PARTS)


def is_seasonal(x: np.ndarray, m: int | None) -> bool:
    """The M4 seasonality test: ``|r_m| > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n)``.

    ``r_k`` is the autocorrelation of ``x`` at lag ``k`` (90% one-sided); a series of
    fewer than ``3 m`` values is not called seasonal.
    """
    x = np.asarray(x, dtype=np.float64)
    if m is None or m < 2 or len(x) < 3 * m:
        return False
    c = x - x.mean()
    denom = float(c @ c)
    if denom <= 0:
        return False
    r = np.array([float(c[k:] @ c[: len(c) - k]) / denom for k in range(1, m + 1)])  # (m,)
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return bool(abs(r[-1]) > limit)


def seasonal_indices(u: np.ndarray, m: int) -> np.ndarray:
    """Additive seasonal indices ``(m,)`` of ``u`` (classical decomposition), mean zero.

    The trend is the centred moving average over one season (``2 x m`` when ``m`` is
    even); ``s[p]`` averages ``u - trend`` over the rows of phase ``p``.
    """
    u = np.asarray(u, dtype=np.float64)
    if len(u) < 2 * m:
        raise ValueError(f"seasonal_indices: need at least 2 seasons ({2 * m} rows), got {len(u)}")
    kernel = np.ones(m) / m
    if m % 2 == 0:
        kernel = np.convolve(kernel, [0.5, 0.5])  # (m + 1,) the 2 x m average
    trend = np.convolve(u, kernel, mode="valid")  # (T - len(kernel) + 1,)
    start = (len(kernel) - 1) // 2  # row of trend[0]
    detrended = u[start : start + len(trend)] - trend
    phase = (np.arange(len(trend)) + start) % m
    s = np.array([detrended[phase == p].mean() for p in range(m)])
    return s - s.mean()


def gather(u: np.ndarray, origins: np.ndarray, length: int) -> np.ndarray:
    """Rows ``[o - length, o)`` of ``u`` ``(T, F)`` for each origin: ``(N, length, F)``.

    Rows before 0 repeat row 0 (edge padding).
    """
    rows = np.asarray(origins, dtype=np.int64)[:, None] + np.arange(-length, 0)[None, :]
    return u[np.clip(rows, 0, None)]


def inputs(hist: np.ndarray, phase: np.ndarray, indices: np.ndarray, anchor: str) -> np.ndarray:
    """Network input ``(N, W, F)`` from history ``hist`` ``(N, W, F)`` on the model scale.

    ``phase`` ``(N,)`` is the phase of each origin (the row after the history).
    """
    m = len(indices)
    w = hist.shape[1]
    x = hist.copy()
    rows = (phase[:, None] + np.arange(-w, 0)[None, :]) % m  # (N, W) phases of the history
    x[..., 0] -= indices[rows]
    if anchor != "none":
        x[..., 0] -= x[:, -1:, 0]
    return x


def anchors(
    hist: np.ndarray, phase: np.ndarray, indices: np.ndarray, anchor: str, steps: int
) -> np.ndarray:
    """The anchors ``a[o, h]`` ``(N, steps)`` (module docstring) from ``hist`` ``(N, L, F)``.

    The seasonal anchor needs ``L >= m``.
    """
    n, length = hist.shape[:2]
    m = len(indices)
    h = np.arange(steps)
    if anchor == "none" or anchor in STATISTICAL:  # statistical: statistical_anchor
        return np.zeros((n, steps))
    if anchor == "seasonal":
        if length < m:
            raise ValueError(
                f"anchors: the seasonal anchor needs {m} rows of history, got {length}"
            )
        back = m * (h // m + 1)  # (S,)
        return hist[:, length + h - back, 0]  # (N, S)
    last = hist[:, -1, 0] - indices[(phase - 1) % m]  # (N,) deseasonalised level
    return last[:, None] + indices[(phase[:, None] + h[None, :]) % m]


def statistical_anchor(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    steps: int,
    season: int | None,
    anchor: str,
    deadline: float | None = None,
) -> np.ndarray:
    """The statistical anchor ``(N, steps)`` of the series ``y`` ``(T,)``: the mean of the
    forecasts of the models in ``PARTS[anchor]``.

    Each model is fitted once on ``y[:fit_end]`` (:func:`~lstmlens.tasks.statistical.ets`,
    :func:`~lstmlens.tasks.theta.theta`, :func:`~lstmlens.tasks.statistical.arima`); its
    states run forward over ``y``, so the anchor at origin ``o`` reads only ``y[:o]``.
    ARIMA cannot forecast from the first :func:`~lstmlens.tasks.statistical.arima_first_origin`
    rows (its differencing needs them): there the other models' mean stands alone.
    ``ValueError`` (or :class:`~lstmlens.tasks.statistical.OutOfTime` past ``deadline``, a
    ``time.monotonic()`` value for the ARIMA and ETS optimisers) when a fit is impossible.
    """
    from .statistical import arima, arima_first_origin, ets, quiet
    from .theta import theta

    if anchor not in PARTS:
        raise ValueError(f"statistical_anchor: anchor must be one of {STATISTICAL}, got {anchor!r}")
    m = season if season is not None and season >= 2 else None
    origins = np.asarray(origins, dtype=np.int64)
    total = np.zeros((len(origins), steps))
    count = np.zeros((len(origins), 1))
    for part in PARTS[anchor]:
        if part == "ets":
            total += ets(y, fit_end, origins, steps, m, deadline)[0]
            count += 1
        elif part == "theta":
            total += theta(y, fit_end, origins, steps, m, quiet=quiet)[0]
            count += 1
        else:
            able = origins >= arima_first_origin(fit_end, m)  # (N,)
            if not able.any():
                raise ValueError("statistical_anchor: ARIMA cannot forecast from these origins")
            total[able] += arima(y, fit_end, origins[able], steps, m, deadline)[0]
            count[able] += 1
    return total / count  # NaN after a NaN in y (rows not known yet): the caller checks
