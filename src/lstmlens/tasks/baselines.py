"""Baseline forecasts on the same origins as the model: naive, seasonal naive, drift, ETS,
Theta, ARIMA.

Every baseline answers the same question as the model: standing at origin ``o``
(knowing ``y[0], ..., y[o-1]``), forecast ``y[o], ..., y[o+H-1]``. With ``h = 1..H``:

    naive           y^[o-1+h] = y[o-1]
    seasonal naive  y^[o-1+h] = y[o-1+h - m*(floor((h-1)/m) + 1)]      (season m)
    drift           y^[o-1+h] = y[o-1] + h * (y[o-1] - y[0]) / (o - 1)

ETS, ARIMA (:mod:`lstmlens.tasks.statistical`) and Theta (:mod:`lstmlens.tasks.theta`)
come from statsmodels: their parameters are fitted once on ``y[:fit_end]``, then the
fitted recursion runs forward over later data with the parameters fixed, so each
origin's forecast uses only observations before it (no refitting, no look-ahead).

:func:`run_baselines` keeps the fitted ones from hanging a run: a season longer than
:data:`MAX_MODEL_SEASON` is declined for ETS and ARIMA (whose state grows with the
season), a long series is fitted on its last :data:`FIT_WINDOW` rows only, the fits
share a time budget of ``budget_s`` seconds (an optimiser still running then stops,
and no fit starts after it), and every fit is announced through a ``progress``
callback. A declined or stopped baseline gets a one-line reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .statistical import MIN_FIT, OutOfTime, arima, check_origins, ets, quiet
from .theta import theta

__all__ = [
    "BASELINES",
    "BUDGET_S",
    "FIT_WINDOW",
    "MAX_MODEL_SEASON",
    "MIN_FIT",
    "OutOfTime",
    "arima",
    "detect_season",
    "drift",
    "ets",
    "naive",
    "parse_baselines",
    "run_baselines",
    "seasonal_naive",
    "theta",
]

#: Longest season ETS and ARIMA are fitted with: a year of weeks. Their state holds one
#: value per seasonal step, so a daily series with a detected season of 342 took
#: seasonal ARIMA beyond 15 minutes; longer seasons are declined with a note.
MAX_MODEL_SEASON = 52

#: Statistical models are fitted on at most this many of the most recent rows before
#: the test part (a 100,000-row series took 6.5 minutes in full); shorter series whole.
FIT_WINDOW = 2000

#: Seconds the statistical fits of one call may take together; a fit still running
#: then stops and one not started is declined, each with a note.
BUDGET_S = 120.0


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
    origins = check_origins(y, origins, horizon, "naive")
    return np.repeat(np.asarray(y, np.float64)[origins - 1, None], horizon, axis=1)


def seasonal_naive(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier (repeated beyond one season): ``(N, H)``."""
    origins = check_origins(y, origins, horizon, "seasonal_naive")
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
    origins = check_origins(y, origins, horizon, "drift")
    y = np.asarray(y, np.float64)
    last = y[origins - 1]
    slope = np.where(origins > 1, (last - y[0]) / np.maximum(origins - 1, 1), 0.0)
    return last[:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


@dataclass(frozen=True)
class _Problem:
    """What every baseline is asked: ``y`` (T,), fits on ``y[:fit_end]``, ``(N,)`` origins."""

    y: np.ndarray
    fit_end: int
    origins: np.ndarray
    horizon: int
    season: int | None
    deadline: float | None = None  # time.monotonic() after which fits stop


@dataclass(frozen=True)
class _Baseline:
    """A registered baseline: how to run it and which limits apply."""

    run: Callable[[_Problem], tuple[np.ndarray, str]]
    needs_season: bool = False  # skipped without a season
    fitted: bool = False  # a statsmodels fit: windowed, timed against the budget
    max_season: int | None = None  # longer seasons are declined


_REGISTRY: dict[str, _Baseline] = {}


def _register(name: str, run: Callable[[_Problem], tuple[np.ndarray, str]], **limits) -> None:
    _REGISTRY[name] = _Baseline(run, **limits)


def _fitted(fn: Callable[..., tuple[np.ndarray, str]]) -> Callable[[_Problem], tuple]:
    return lambda p: fn(p.y, p.fit_end, p.origins, p.horizon, p.season, p.deadline)


_register("naive", lambda p: (naive(p.y, p.origins, p.horizon), "last value"))


def _seasonal_naive(p: _Problem) -> tuple[np.ndarray, str]:
    assert p.season is not None  # needs_season: skipped without one
    return seasonal_naive(p.y, p.origins, p.horizon, p.season), (
        f"value one season (m={p.season}) earlier"
    )


_register("seasonal_naive", _seasonal_naive, needs_season=True)
_register("drift", lambda p: (drift(p.y, p.origins, p.horizon), "drift"))
_register("ets", _fitted(ets), fitted=True, max_season=MAX_MODEL_SEASON)
_register(
    "theta",
    lambda p: theta(p.y, p.fit_end, p.origins, p.horizon, p.season, quiet=quiet),
    fitted=True,
)
_register("arima", _fitted(arima), fitted=True, max_season=MAX_MODEL_SEASON)

#: Names of all baselines, in report order.
BASELINES = tuple(_REGISTRY)


def parse_baselines(text: str) -> tuple[str, ...]:
    """``"none"`` -> ``()``; ``"ets,theta"`` -> ``("ets", "theta")`` (unknown names raise)."""
    if text.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown or not names:
        raise ValueError(
            f"unknown baseline {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(BASELINES)} or none"
        )
    return names


def _window(p: _Problem, rows: int) -> tuple[_Problem, int]:
    """The problem on the last ``rows`` rows before ``fit_end`` (and everything after)."""
    start = max(0, min(p.fit_end - rows, int(p.origins.min(initial=p.fit_end)) - 1))
    if start == 0:
        return p, 0
    return replace(p, y=p.y[start:], fit_end=p.fit_end - start, origins=p.origins - start), start


def _decline(spec: _Baseline, p: _Problem, started: float, budget_s: float | None) -> str | None:
    """Why a baseline is not run on this problem (``None``: run it)."""
    if spec.needs_season and (p.season is None or p.season < 2):
        return "no seasonal period detected (give one with --season)"
    if spec.max_season is not None and p.season is not None and p.season > spec.max_season:
        return (
            f"season {p.season} is too long to fit (limit {spec.max_season} steps); "
            "give a shorter --season, or leave it out with --baselines"
        )
    if spec.fitted and budget_s is not None and time.monotonic() - started > budget_s:
        return f"the baselines' time budget ({budget_s:g} s) was spent before it could start"
    return None


def run_baselines(
    y: np.ndarray,
    fit_end: int,
    origins: np.ndarray,
    horizon: int,
    season: int | None,
    names: tuple[str, ...] = BASELINES,
    progress: Callable[[str], None] | None = None,
    budget_s: float | None = BUDGET_S,
    fit_window: int = FIT_WINDOW,
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """All requested baselines at ``origins``, in the order of :data:`BASELINES`.

    Returns ``(forecasts, descriptions, skipped)``: forecasts maps a name to an
    ``(N, H)`` array, descriptions to a short text, skipped a left-out baseline to a
    one-line reason (no season, season too long, series too short, time budget spent,
    or a statsmodels failure). ``progress`` receives a line before and after each
    statistical fit; ``budget_s=None`` lifts the time budget.
    """
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"run_baselines: unknown baseline {unknown[0]!r}; known: {BASELINES}")
    say = progress or (lambda _: None)
    forecasts: dict[str, np.ndarray] = {}
    descriptions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    started = time.monotonic()
    deadline = None if budget_s is None else started + budget_s
    y, origins = np.asarray(y, np.float64), np.asarray(origins, np.int64)
    problem = _Problem(y, fit_end, origins, horizon, season, deadline)
    for name in (n for n in BASELINES if n in names):
        spec = _REGISTRY[name]
        if (why := _decline(spec, problem, started, budget_s)) is not None:
            skipped[name] = why
            continue
        p, start = _window(problem, fit_window) if spec.fitted else (problem, 0)
        if spec.fitted:
            say(f"baseline {name}: fitting on {p.fit_end} rows")
        tic = time.monotonic()
        try:
            forecasts[name], descriptions[name] = spec.run(p)
        except OutOfTime:
            skipped[name] = f"stopped: the baselines' time budget ({budget_s:g} s) ran out"
            continue
        except (ValueError, np.linalg.LinAlgError, IndexError, KeyError) as err:
            skipped[name] = f"{type(err).__name__}: {err}".splitlines()[0]
            continue
        if start:
            descriptions[name] += f", fitted on the last {p.fit_end} rows"
        if spec.fitted:
            say(f"baseline {name}: {descriptions[name]} ({time.monotonic() - tic:.1f} s)")
        if not np.all(np.isfinite(forecasts[name])):
            del forecasts[name], descriptions[name]
            skipped[name] = "produced non-finite forecasts"
    return forecasts, descriptions, skipped
