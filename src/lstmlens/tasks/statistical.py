"""ETS and ARIMA from statsmodels, fitted once and run forward over later origins.

ETS is Holt-Winters with a damped additive trend and an additive or multiplicative
season, chosen by AIC; ARIMA is SARIMA(1,1,1)(0,1,1)_m (the "airline" model plus an
AR term) on the raw or log scale chosen by AIC with the log-Jacobian term, or
ARIMA(1,1,1) with drift without a season. Parameters are fitted once on
``y[:fit_end]``; then the fitted recursion runs forward over later data with the
parameters fixed, so each origin's forecast uses only observations before it (no
refitting, no look-ahead). A ``deadline`` stops the optimiser (:class:`OutOfTime`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np

__all__ = ["MIN_FIT", "OutOfTime", "arima", "arima_first_origin", "check_origins", "ets", "quiet"]

#: Fewest training values (after differencing, for ARIMA) that ETS and ARIMA are fitted on.
_T = TypeVar("_T")

MIN_FIT = 20


def check_origins(y: np.ndarray, origins: np.ndarray, horizon: int, name: str) -> np.ndarray:
    origins = np.asarray(origins, dtype=np.int64)
    if horizon < 1:
        raise ValueError(f"{name}: horizon must be >= 1, got {horizon}")
    if len(origins) and (origins.min() < 1 or origins.max() > len(y)):
        raise ValueError(f"{name}: origins must lie in [1, {len(y)}], got {origins.tolist()}")
    return origins


class OutOfTime(Exception):
    """A statistical fit ran past its deadline."""


def _clock(deadline: float) -> Callable[..., None]:
    """An optimiser callback (called once an iteration) that stops it past ``deadline``."""

    def check(*_: object) -> None:
        if time.monotonic() > deadline:
            raise OutOfTime

    return check


def quiet(fn: Callable[[], _T]) -> _T:
    """Run a statsmodels call with its convergence and estimation warnings silenced.

    BLAS is held to one thread meanwhile: the Kalman filter multiplies tiny
    matrices, and a multi-threaded OpenBLAS spinning on a busy machine made fits
    up to 100 times slower.
    """
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(1, "blas"):
        warnings.simplefilter("ignore")
        return fn()


def _nonlinear_scale(y: np.ndarray) -> bool:
    """Whether a positive series spans enough range for log/multiplicative forms to matter."""
    return bool(np.all(y > 0) and y.max() / y.min() > 1.5)


def ets(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    deadline: float | None = None,
) -> tuple[np.ndarray, str]:
    """Holt-Winters ETS forecasts ``(N, H)`` and a description of the chosen model.

    Past ``deadline`` (``time.monotonic()``) the optimiser stops with :class:`OutOfTime`.
    """
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    origins = check_origins(y, origins, horizon, "ets")
    y = np.asarray(y, np.float64)
    train = y[:fit_end]
    if fit_end < MIN_FIT:
        raise ValueError(f"ets: needs at least {MIN_FIT} values to fit, got {fit_end}")
    use_season = season is not None and season >= 2 and len(train) >= 2 * season + 2
    kinds = ["add"] + (["mul"] if use_season and _nonlinear_scale(y) else [])
    fits = []
    for kind in kinds:
        model = ExponentialSmoothing(
            train,
            trend="add",
            damped_trend=True,
            seasonal=kind if use_season else None,
            seasonal_periods=season if use_season else None,
            initialization_method="estimated",
        )
        stop = {"callback": _clock(deadline)} if deadline is not None else None
        fits.append((quiet(partial(model.fit, minimize_kwargs=stop)), kind))
    fitted, kind = min(fits, key=lambda f: f[0].aic)
    p = fitted.params
    # Same parameters and initial states, run over all of y: states at t use y[:t+1].
    full = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal=kind if use_season else None,
        seasonal_periods=season if use_season else None,
        initialization_method="known",
        initial_level=p["initial_level"],
        initial_trend=p["initial_trend"],
        initial_seasonal=p["initial_seasons"] if use_season else None,
    )
    fixed = {k: p[k] for k in ("smoothing_level", "smoothing_trend", "damping_trend")}
    if use_season:
        fixed["smoothing_seasonal"] = p["smoothing_seasonal"]
    states = quiet(lambda: full.fit(optimized=False, **fixed))
    phi = p["damping_trend"]
    h = np.arange(1, horizon + 1)
    phi_h = np.cumsum(phi**h)  # (H,) phi + phi^2 + ... + phi^h
    t = origins - 1  # last observed step
    trend_part = states.level[t, None] + phi_h[None, :] * states.trend[t, None]  # (N, H)
    desc = "ETS(A,Ad,N)"
    if season is not None and season >= 2 and not use_season:
        desc += f" (season {season} left out: {len(train)} rows < 2 seasons + 2)"
    if use_season:
        assert season is not None  # use_season implies a season
        m = int(season)
        back = m * ((h - 1) // m + 1)  # (H,)
        seas = states.season[t[:, None] + h[None, :] - back[None, :]]  # (N, H)
        trend_part = trend_part + seas if kind == "add" else trend_part * seas
        desc = f"ETS(A,Ad,{'A' if kind == 'add' else 'M'}) m={m}"
    return trend_part, desc


def _diff_poly(d: int, big_d: int, m: int) -> np.ndarray:
    """Coefficients of (1 - B)^d (1 - B^m)^D, lowest lag first."""
    poly = np.array([1.0])
    for _ in range(d):
        poly = np.convolve(poly, [1.0, -1.0])
    for _ in range(big_d):
        poly = np.convolve(poly, np.r_[1.0, np.zeros(m - 1), -1.0])
    return poly


def _arima_lag(fit_end: int, m: int) -> tuple[bool, np.ndarray]:
    """Whether ARIMA models the season ``m`` (three seasons and 10 rows to fit on), and its
    differencing polynomial ``(1-B)(1-B^m)`` (or ``1-B``) as coefficients."""
    seasonal = m > 0 and fit_end >= 3 * m + 10
    return seasonal, _diff_poly(1, 1 if seasonal else 0, m)


def arima_first_origin(fit_end: int, season: int | None) -> int:
    """The first origin :func:`arima` forecasts from after a fit on ``fit_end`` rows."""
    m = int(season) if season is not None and season >= 2 else 0
    return len(_arima_lag(fit_end, m)[1]) + 1  # lag + 2


def arima(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    deadline: float | None = None,
) -> tuple[np.ndarray, str]:
    """ARIMA forecasts ``(N, H)`` and a description of the chosen model.

    The differencing ``w = (1-B)(1-B^m) z`` (``z`` = y or log y) is applied first and
    an ARMA is fitted to ``w`` by state-space maximum likelihood; forecasts of ``w``
    from each origin are integrated back with the known past values.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    origins = check_origins(y, origins, horizon, "arima")
    y = np.asarray(y, np.float64)
    m = int(season) if season is not None and season >= 2 else 0
    seasonal, poly = _arima_lag(fit_end, m)
    lag = len(poly) - 1
    if fit_end - lag < MIN_FIT:
        raise ValueError(f"arima: needs at least {MIN_FIT + lag} values to fit, got {fit_end}")
    if len(origins) and origins.min() < lag + 2:
        raise ValueError(f"arima: each origin needs {lag + 2} earlier values")
    results = []
    for use_log in [False] + ([True] if _nonlinear_scale(y) else []):
        z = np.log(y) if use_log else y
        w = np.convolve(z, poly, mode="valid")  # (T - lag,): w[i] is the difference at step i+lag
        model = SARIMAX(
            w[: fit_end - lag],
            order=(1, 0, 1),
            seasonal_order=(0, 0, 1, m) if seasonal else (0, 0, 0, 0),
            trend="n" if seasonal else "c",
        )
        stop = _clock(deadline) if deadline is not None else None
        fit = quiet(partial(model.fit, disp=False, cov_type="none", low_memory=True, callback=stop))
        # AIC of y itself: add the log-Jacobian 2 * sum(log y) over the modelled steps.
        aic = fit.aic + (2.0 * np.log(y[lag:fit_end]).sum() if use_log else 0.0)
        results.append((aic, use_log, z, w, fit))
    _, use_log, z, w, fit = min(results, key=lambda r: r[0])
    # Same parameters, filtered over all of w: a_pred[:, i] predicts w[i] from w[:i].
    full = quiet(lambda: fit.model.clone(w).filter(fit.params))
    a_pred = full.predicted_state  # (k, T - lag + 1)
    ssm = full.filter_results
    design, trans = ssm.design[..., 0], ssm.transition[..., 0]
    obs_c, state_c = ssm.obs_intercept[:, 0], ssm.state_intercept[:, 0]
    out = np.empty((len(origins), horizon))
    for n, o in enumerate(origins):
        state = a_pred[:, o - lag]
        path = list(z[o - lag : o])  # the known past it needs, then forecasts appended
        for _ in range(horizon):
            w_hat = float((obs_c + design @ state)[0])
            # (1-B)^d(1-B^m)^D z_t = w_t  =>  z_t = w_t - sum_{k>=1} poly[k] z_{t-k}
            path.append(w_hat - sum(poly[k] * path[-k] for k in range(1, lag + 1)))
            state = state_c + trans @ state
        out[n] = path[lag:]
    if use_log:
        out = np.exp(out)
    name = f"ARIMA(1,1,1)(0,1,1)_{m}" if seasonal else "ARIMA(1,1,1)+drift"
    if m and not seasonal:
        name += f" (season {m} left out: {fit_end} rows < 3 seasons + 10)"
    return out, name + (" on log" if use_log else "")
