"""ETS's own forecast interval, to stand beside the model's in ``metrics.json``.

The ETS baseline (:func:`~lstmlens.tasks.baselines.ets`: Holt-Winters with a damped
additive trend, additive or multiplicative season chosen by AIC) is fitted on the rows
before ``fit_end``. For each origin ``o`` the same parameters are run over ``y[:o]``
and ``REPETITIONS`` future paths are simulated from there (statsmodels
``HoltWintersResults.simulate``: Gaussian errors with the fitted residual variance,
additive or, for a multiplicative season, multiplicative); the quantiles of the paths
at each step are ETS's quantile forecasts.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["REPETITIONS", "ets_quantiles"]

#: Simulated paths per origin.
REPETITIONS = 1000


def _fit(y: np.ndarray, season: int | None, kind: str | None, known: dict | None = None):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal=kind,
        seasonal_periods=season if kind else None,
        initialization_method="known" if known else "estimated",
        **({} if known is None else known["init"]),
    )
    return model.fit() if known is None else model.fit(optimized=False, **known["fixed"])


def ets_quantiles(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    levels: tuple[float, ...],
    seed: int = 0,
) -> np.ndarray:
    """ETS quantile forecasts ``(N, H, Q)`` at ``levels`` from each origin (module docstring).

    Raises ``ValueError`` when the series is too short to fit.
    """
    from threadpoolctl import threadpool_limits

    from .statistical import MIN_FIT, _nonlinear_scale

    y = np.asarray(y, dtype=np.float64)
    if fit_end < MIN_FIT:
        raise ValueError(f"ets_quantiles: needs at least {MIN_FIT} values to fit, got {fit_end}")
    train = y[:fit_end]
    use_season = season is not None and season >= 2 and len(train) >= 2 * season + 2
    kinds: list[str | None] = ["add"] if use_season else [None]
    if use_season and _nonlinear_scale(y):
        kinds.append("mul")
    rng = np.random.default_rng(seed)
    out = np.empty((len(origins), horizon, len(levels)))
    with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(1, "blas"):
        warnings.simplefilter("ignore")
        fits = [(_fit(train, season, kind), kind) for kind in kinds]
        fitted, kind = min(fits, key=lambda f: f[0].aic)
        p = fitted.params
        known = {
            "init": {
                "initial_level": p["initial_level"],
                "initial_trend": p["initial_trend"],
                "initial_seasonal": p["initial_seasons"] if kind else None,
            },
            "fixed": {
                k: p[k]
                for k in ("smoothing_level", "smoothing_trend", "damping_trend")
                + (("smoothing_seasonal",) if kind else ())
            },
        }
        for n, o in enumerate(np.asarray(origins, dtype=np.int64)):
            run = fitted if o == fit_end else _fit(y[:o], season, kind, known)
            paths = run.simulate(horizon, anchor="end", repetitions=REPETITIONS,
                                 error="mul" if kind == "mul" else "add", rng=rng)  # fmt: skip
            paths = np.asarray(paths, dtype=np.float64).reshape(horizon, -1)  # (H, R)
            out[n] = np.quantile(paths, levels, axis=1).T  # (H, Q)
    if not np.all(np.isfinite(out)):
        raise ValueError("ets_quantiles: the simulation produced non-finite values")
    return out
