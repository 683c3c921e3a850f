"""The Theta method (statsmodels' ``ThetaModel``), fitted once and run forward over later origins.

Theta (Assimakopoulos & Nikolopoulos 2000; Hyndman & Billah 2003) forecasts the
deseasonalised series ``x`` as simple exponential smoothing plus half the slope
``b0`` of a straight line fitted by least squares. Standing at origin ``o`` (knowing
``x[0], ..., x[o-1]``), with ``h = 1..H``:

    l_t           = alpha x_t + (1 - alpha) l_{t-1},    l_{-1} = x_0
    x^[o-1+h]     = l_{o-1} + (b0 / 2) (h - 1 + 1/alpha - (1 - alpha)^o / alpha)
    y^[o-1+h]     = x^[o-1+h] * s[(o-1+h) mod m]        (or + s, additive season)

``alpha``, ``b0`` and the seasonal indices ``s`` (a classical decomposition, kept
only when statsmodels' seasonality test finds the season) are fitted once on
``y[:fit_end]``; only the level ``l`` runs forward, so each origin uses only the
observations before it. At ``o = fit_end`` this is exactly ``ThetaModel.forecast``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.signal import lfilter

__all__ = ["theta"]


def theta(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    quiet: Callable[[Callable[[], Any]], Any] = lambda fn: fn(),
) -> tuple[np.ndarray, str]:
    """Theta forecasts ``(N, H)`` at ``origins`` and a description of the fitted model.

    ``quiet`` wraps the statsmodels fit (the caller silences warnings and BLAS threads).
    A season is tried when ``season >= 2`` and the fit part holds two full seasons.
    """
    from statsmodels.tsa.forecasting.theta import ThetaModel

    y = np.asarray(y, np.float64)
    origins = np.asarray(origins, np.int64)
    m = int(season) if season is not None and season >= 2 and fit_end >= 2 * season else 0
    model = ThetaModel(y[:fit_end], period=m or None, deseasonalize=m > 0)
    fitted = quiet(model.fit)
    b0, alpha = float(fitted.params["b0"]), float(fitted.params["alpha"])
    multiplicative = model.method.startswith("mul")
    s = np.ones(1) if multiplicative else np.zeros(1)  # no season: the identity
    if m:
        # forecast_components gives s[(fit_end + j) % m] for j = 0..m-1; put them in place.
        comp = quiet(lambda: fitted.forecast_components(steps=m))
        s = np.empty(m)
        s[(fit_end + np.arange(m)) % m] = np.asarray(comp["seasonal"])
    period = len(s)
    s_t = s[np.arange(len(y)) % period]  # (T,) seasonal index of every step
    x = y / s_t if multiplicative else y - s_t  # (T,) deseasonalised
    # l_t = alpha x_t + (1 - alpha) l_{t-1} with l_{-1} = x_0, as a linear filter.
    level, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])
    h = np.arange(horizon, dtype=np.float64)  # h - 1 for h = 1..H
    steps = h[None, :] + (
        (1.0 / alpha - (1.0 - alpha) ** origins[:, None] / alpha) if alpha > 0 else 0.0
    )  # (N, H)
    out = level[origins - 1, None] + 0.5 * b0 * steps  # (N, H), deseasonalised
    seas = s[(origins[:, None] + np.arange(horizon)[None, :]) % period]  # (N, H)
    out = out * seas if multiplicative else out + seas
    if not m:
        kind = "no season"
    elif np.all(s == (1.0 if multiplicative else 0.0)):
        kind = f"season m={m} not significant"
    else:
        kind = ("multiplicative" if multiplicative else "additive") + f" season m={m}"
    return out, f"Theta(alpha={alpha:.3g}, {kind})"
