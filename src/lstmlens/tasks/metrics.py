"""Forecast error metrics: MAE, RMSE, sMAPE and MASE; interval coverage and pinball loss.

For actual values ``y_t`` and forecasts ``f_t`` over the ``n`` evaluated steps:

    MAE   = (1/n) sum |y_t - f_t|
    RMSE  = sqrt((1/n) sum (y_t - f_t)^2)
    sMAPE = (100/n) sum 2 |y_t - f_t| / (|y_t| + |f_t|)        (a term with 0/0 counts 0)
    MASE  = MAE / ((1/(N-m)) sum_{t>m} |x_t - x_{t-m}|)         (x: the N in-sample values)

sMAPE is the M4-competition percentage (0..200). MASE (Hyndman & Koehler 2006)
divides by the in-sample MAE of the seasonal-naive forecast with period ``m``
(``m = 1``: the naive forecast), so MASE < 1 beats that benchmark in-sample.

For quantile forecasts ``q_t(tau)`` at levels ``tau_1 < ... < tau_Q``:

    coverage = (1/n) sum [q_t(tau_1) <= y_t <= q_t(tau_Q)]
    pinball  = (1/(n Q)) sum_t sum_j max(tau_j e, (tau_j - 1) e),   e = y_t - q_t(tau_j)
"""

from __future__ import annotations

import numpy as np

__all__ = ["all_metrics", "coverage", "mae", "mase", "pinball", "rmse", "smape"]


def _pair(actual: np.ndarray, forecast: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(actual, dtype=np.float64).ravel()
    f = np.asarray(forecast, dtype=np.float64).ravel()
    if y.shape != f.shape or y.size == 0:
        raise ValueError(
            f"{name}: expected actual and forecast of the same non-empty size, "
            f"got {np.shape(actual)} and {np.shape(forecast)}"
        )
    return y, f


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error."""
    y, f = _pair(actual, forecast, "mae")
    return float(np.mean(np.abs(y - f)))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error."""
    y, f = _pair(actual, forecast, "rmse")
    return float(np.sqrt(np.mean((y - f) ** 2)))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric mean absolute percentage error, in percent (0..200)."""
    y, f = _pair(actual, forecast, "smape")
    denom = np.abs(y) + np.abs(f)
    terms = np.divide(2.0 * np.abs(y - f), denom, out=np.zeros_like(y), where=denom > 0)
    return float(100.0 * np.mean(terms))


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, season: int = 1) -> float:
    """Mean absolute scaled error against the in-sample seasonal-naive MAE (period ``season``).

    Returns ``nan`` when the in-sample scale is zero (a constant series).
    """
    y, f = _pair(actual, forecast, "mase")
    x = np.asarray(insample, dtype=np.float64).ravel()
    m = int(season) if season else 1
    if m < 1 or len(x) <= m:
        raise ValueError(f"mase: need more than season={m} in-sample values, got {len(x)}")
    scale = float(np.mean(np.abs(x[m:] - x[:-m])))
    if scale == 0.0:
        return float("nan")
    return float(np.mean(np.abs(y - f)) / scale)


def all_metrics(
    actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, season: int = 1
) -> dict[str, float]:
    """``{"mae", "rmse", "smape", "mase"}`` for one forecast."""
    return {
        "mae": mae(actual, forecast),
        "rmse": rmse(actual, forecast),
        "smape": smape(actual, forecast),
        "mase": mase(actual, forecast, insample, season),
    }


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of ``actual`` values inside ``[lower, upper]`` (all the same shape)."""
    y, lo = _pair(actual, lower, "coverage")
    _, hi = _pair(actual, upper, "coverage")
    return float(np.mean((y >= lo) & (y <= hi)))


def pinball(actual: np.ndarray, quantiles: np.ndarray, levels: tuple[float, ...]) -> float:
    """Mean pinball loss of ``quantiles`` ``(..., Q)`` at ``levels`` for ``actual`` ``(...)``."""
    q = np.asarray(quantiles, dtype=np.float64)
    tau = np.asarray(levels, dtype=np.float64)
    y = np.asarray(actual, dtype=np.float64)
    if q.shape != (*y.shape, len(tau)) or y.size == 0:
        raise ValueError(
            f"pinball: expected quantiles of shape {(*y.shape, len(tau))}, got {q.shape}"
        )
    err = y[..., None] - q
    return float(np.mean(np.maximum(tau * err, (tau - 1) * err)))
