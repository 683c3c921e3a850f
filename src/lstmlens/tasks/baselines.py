"""Baseline forecasts on the same origins as the model: naive, seasonal naive, drift, ETS, ARIMA.

Every baseline answers the same question as the model: standing at origin ``o``
(knowing ``y[0], ..., y[o-1]``), forecast ``y[o], ..., y[o+H-1]``. With ``h = 1..H``:

    naive           y^[o-1+h] = y[o-1]
    seasonal naive  y^[o-1+h] = y[o-1+h - m*(floor((h-1)/m) + 1)]      (season m)
    drift           y^[o-1+h] = y[o-1] + h * (y[o-1] - y[0]) / (o - 1)

ETS (Holt-Winters with a damped additive trend and additive or multiplicative
season, chosen by AIC) and ARIMA (SARIMA(1,1,1)(0,1,1)_m, the "airline" model
plus an AR term, on the raw or log scale chosen by AIC with the log-Jacobian term;
without a season ARIMA(1,1,1) with drift) come from statsmodels. Their parameters
are fitted once on ``y[:fit_end]``; then the fitted recursion runs forward over
later data with the parameters fixed, so each origin's forecast uses only
observations before it (no refitting, no look-ahead).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

__all__ = [
    "BASELINES",
    "MIN_FIT",
    "arima",
    "detect_season",
    "drift",
    "ets",
    "naive",
    "run_baselines",
    "seasonal_naive",
]

#: Names of all baselines, in report order.
BASELINES = ("naive", "seasonal_naive", "drift", "ets", "arima")

#: Fewest training values (after differencing, for ARIMA) that ETS and ARIMA are fitted on.
MIN_FIT = 20


def _check(y: np.ndarray, origins: np.ndarray, horizon: int, name: str) -> np.ndarray:
    origins = np.asarray(origins, dtype=np.int64)
    if horizon < 1:
        raise ValueError(f"{name}: horizon must be >= 1, got {horizon}")
    if len(origins) and (origins.min() < 1 or origins.max() > len(y)):
        raise ValueError(f"{name}: origins must lie in [1, {len(y)}], got {origins.tolist()}")
    return origins


def detect_season(y: np.ndarray, max_lag: int | None = None, threshold: float = 0.3) -> int | None:
    """Seasonal period from the autocorrelation of the detrended series.

    A quadratic trend is removed, then the season is the lag ``k >= 2`` (up to
    ``max_lag``, default a third of the length) where the ACF has a local maximum
    above ``threshold`` (and the 95% noise band ``2 / sqrt(n)``) that rises at least
    ``threshold`` above the lowest ACF value before it. Multiples of the period peak
    about as high, so the first peak within 90% of the highest wins. ``None`` if none.
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    max_lag = n // 3 if max_lag is None else min(max_lag, n - 2)
    if max_lag < 3 or not np.isfinite(y).all():
        return None
    t = np.arange(n)
    x = y - np.polyval(np.polyfit(t, y, 2), t)
    denom = float(x @ x)
    if denom <= 1e-12 * max(1.0, float(y @ y)):
        return None
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: max_lag + 2] / denom  # (max_lag+2,)
    floor = max(threshold, 2.0 / np.sqrt(n))
    peaks = [
        k
        for k in range(2, max_lag + 1)
        if acf[k] > acf[k - 1]
        and acf[k] >= acf[k + 1]
        and acf[k] > floor
        and acf[k] - acf[1:k].min() > threshold
    ]
    if not peaks:
        return None
    top = max(acf[k] for k in peaks)
    return next(k for k in peaks if acf[k] >= 0.9 * top)


def naive(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Last value carried forward: ``(N, H)``."""
    origins = _check(y, origins, horizon, "naive")
    return np.repeat(np.asarray(y, np.float64)[origins - 1, None], horizon, axis=1)


def seasonal_naive(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier (repeated beyond one season): ``(N, H)``."""
    origins = _check(y, origins, horizon, "seasonal_naive")
    if season < 1 or (len(origins) and origins.min() < season):
        raise ValueError(
            f"seasonal_naive: need season >= 1 and a full season before each origin, "
            f"got season {season}"
        )
    h = np.arange(horizon)  # 0-based step
    lag = season * (h // season + 1)  # (H,)
    return np.asarray(y, np.float64)[origins[:, None] + h[None, :] - lag[None, :]]


def drift(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The line through the first and the last known value, extended: ``(N, H)``."""
    origins = _check(y, origins, horizon, "drift")
    y = np.asarray(y, np.float64)
    last = y[origins - 1]
    slope = np.where(origins > 1, (last - y[0]) / np.maximum(origins - 1, 1), 0.0)
    return last[:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


def _quiet(fn: Callable[[], object]) -> object:
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
    y: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int, season: int | None
) -> tuple[np.ndarray, str]:
    """Holt-Winters ETS forecasts ``(N, H)`` and a description of the chosen model."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    origins = _check(y, origins, horizon, "ets")
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
        fits.append((_quiet(model.fit), kind))
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
    states = _quiet(lambda: full.fit(optimized=False, **fixed))
    phi = p["damping_trend"]
    h = np.arange(1, horizon + 1)
    phi_h = np.cumsum(phi**h)  # (H,) phi + phi^2 + ... + phi^h
    t = origins - 1  # last observed step
    trend_part = states.level[t, None] + phi_h[None, :] * states.trend[t, None]  # (N, H)
    desc = "ETS(A,Ad,N)"
    if use_season:
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


def arima(
    y: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int, season: int | None
) -> tuple[np.ndarray, str]:
    """ARIMA forecasts ``(N, H)`` and a description of the chosen model.

    The differencing ``w = (1-B)(1-B^m) z`` (``z`` = y or log y) is applied first and
    an ARMA is fitted to ``w`` by state-space maximum likelihood; forecasts of ``w``
    from each origin are integrated back with the known past values.
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    origins = _check(y, origins, horizon, "arima")
    y = np.asarray(y, np.float64)
    m = int(season) if season is not None and season >= 2 else 0
    seasonal = m > 0 and fit_end >= 3 * m + 10
    big_d = 1 if seasonal else 0
    poly = _diff_poly(1, big_d, m)
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
        fit = _quiet(lambda model=model: model.fit(disp=False, cov_type="none", low_memory=True))
        # AIC of y itself: add the log-Jacobian 2 * sum(log y) over the modelled steps.
        aic = fit.aic + (2.0 * np.log(y[lag:fit_end]).sum() if use_log else 0.0)
        results.append((aic, use_log, z, w, fit))
    _, use_log, z, w, fit = min(results, key=lambda r: r[0])
    # Same parameters, filtered over all of w: a_pred[:, i] predicts w[i] from w[:i].
    full = _quiet(lambda: fit.model.clone(w).filter(fit.params))
    a_pred = full.predicted_state  # (k, T - lag + 1)
    ssm = full.filter_results
    design, trans = ssm.design[..., 0], ssm.transition[..., 0]
    obs_c, state_c = ssm.obs_intercept[:, 0], ssm.state_intercept[:, 0]
    out = np.empty((len(origins), horizon))
    for n, o in enumerate(origins):
        state = a_pred[:, o - lag]
        path = list(z[:o])  # known past on the modelled scale, then forecasts appended
        for _ in range(horizon):
            w_hat = float((obs_c + design @ state)[0])
            # (1-B)^d(1-B^m)^D z_t = w_t  =>  z_t = w_t - sum_{k>=1} poly[k] z_{t-k}
            path.append(w_hat - sum(poly[k] * path[-k] for k in range(1, lag + 1)))
            state = state_c + trans @ state
        out[n] = path[o:]
    if use_log:
        out = np.exp(out)
    name = f"ARIMA(1,1,1)(0,1,1)_{m}" if seasonal else "ARIMA(1,1,1)+drift"
    return out, name + (" on log" if use_log else "")


def run_baselines(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    names: tuple[str, ...] = BASELINES,
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """All requested baselines at ``origins``.

    Returns ``(forecasts, descriptions, skipped)``: forecasts maps a name to an
    ``(N, H)`` array, descriptions to a short text, skipped a left-out baseline to the
    reason (no season detected, series too short, or a statsmodels failure).
    """
    forecasts: dict[str, np.ndarray] = {}
    descriptions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    origins = np.asarray(origins, dtype=np.int64)
    for name in names:
        if name not in BASELINES:
            raise ValueError(f"run_baselines: unknown baseline {name!r}; known: {BASELINES}")
        try:
            if name == "naive":
                forecasts[name], descriptions[name] = naive(y, origins, horizon), "last value"
            elif name == "drift":
                forecasts[name], descriptions[name] = drift(y, origins, horizon), "drift"
            elif name == "seasonal_naive":
                if season is None or season < 2:
                    skipped[name] = "no seasonal period detected (give one with --season)"
                    continue
                forecasts[name] = seasonal_naive(y, origins, horizon, season)
                descriptions[name] = f"value one season (m={season}) earlier"
            else:
                fn = ets if name == "ets" else arima
                forecasts[name], descriptions[name] = fn(y, fit_end, origins, horizon, season)
        except (ValueError, np.linalg.LinAlgError, IndexError, KeyError) as err:
            skipped[name] = f"{type(err).__name__}: {err}".splitlines()[0]
            continue
        if not np.all(np.isfinite(forecasts[name])):
            del forecasts[name]
            skipped[name] = "produced non-finite forecasts"
    return forecasts, descriptions, skipped
