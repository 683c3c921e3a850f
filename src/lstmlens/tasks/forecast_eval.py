"""Scoring a forecaster on the test part against the baselines, and rolling-origin backtests.

The protocol (docs/design.md): the test part is the last ``k x H`` rows, and the
test origins are ``val_end, val_end + H, ...`` (stride ``H``): every test row is
forecast exactly once, from the nearest origin before it, by the model and by each
baseline (whose parameters are fitted on the rows before ``val_end``). A test part
that is not a multiple of ``H`` ends with a shorter last forecast. Metrics are in the
data's units; MASE is scaled by the seasonal-naive error on the rows before the test.
With quantiles the model also reports ``coverage`` (the share of test values inside
its outermost interval, nominal ``tau_hi - tau_lo``) and ``pinball`` (the mean pinball
loss over its levels, :func:`~lstmlens.tasks.metrics.pinball`); ETS reports the same for
its own simulated interval at those levels (:func:`~.forecast_intervals.ets_quantiles`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.series import Series
from ..data.windows import Split
from ..train import Reporter, TrainConfig
from .baselines import BASELINES, run_baselines
from .forecast import ForecastConfig, Forecaster, Prediction
from .forecast_intervals import ets_quantiles
from .metrics import all_metrics, coverage, pinball

__all__ = ["Evaluation", "backtest", "evaluate", "metrics_table"]


@dataclass
class Evaluation:
    """Test-part forecasts of the model and the baselines, and their metrics."""

    origins: np.ndarray  # (N,) row positions of the forecast origins
    actual: np.ndarray  # (N, H) the test values
    model: Prediction  # the model's forecasts (N, H)
    baselines: dict[str, np.ndarray]  # name -> (N, H)
    metrics: dict[str, Any] = field(default_factory=dict)  # {"model", "baselines", ...}

    def best_baseline(self) -> str | None:
        """The baseline with the lowest MAE (None if there is none)."""
        scores = self.metrics.get("baselines", {})
        return min(scores, key=lambda k: scores[k]["mae"]) if scores else None


def test_origins(split: Split, horizon: int) -> np.ndarray:
    """Origins ``val_end, val_end + H, ...`` covering every test row once ``(k,)``."""
    return np.arange(split.val_end, split.n, horizon, dtype=np.int64)


def evaluate(
    forecaster: Forecaster,
    series: Series,
    split: Split,
    baselines: tuple[str, ...] = BASELINES,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Forecast the test part ``[split.val_end, split.n)`` with the model and the baselines
    (``progress`` hears about each statistical fit).

    ``actual`` is ``(k, H)`` with NaN past the end of the series (a partial last block);
    metrics use the known entries only.
    """
    h = forecaster.config.horizon
    origins = test_origins(split, h)
    if len(origins) == 0:
        raise ValueError(f"evaluate: the test part ({split.test_size} rows) is empty")
    y = series.values
    rows = origins[:, None] + np.arange(h)[None, :]  # (k, H)
    known = rows < split.n
    actual = np.where(known, y[np.minimum(rows, split.n - 1)], np.nan)  # (k, H)
    pred = forecaster.predict_at(series, origins, h)
    season = forecaster.season
    padded = y[: split.n]  # every forecast reads only the rows before its origin
    forecasts, descriptions, skipped = run_baselines(
        padded, split.val_end, origins, h, season, baselines, progress=progress
    )
    insample = y[: split.val_end]
    m = season if season and len(insample) > season else 1

    def score(forecast: np.ndarray) -> dict[str, float]:
        return all_metrics(actual[known], forecast[known], insample, m)

    model_metrics = score(pred.point)
    if pred.quantiles is not None:
        q = pred.quantiles[known]  # (K, Q): lowest and highest quantile bound the interval
        model_metrics["coverage"] = coverage(actual[known], q[..., 0], q[..., -1])
        model_metrics["pinball"] = pinball(actual[known], q, pred.levels)
    scores = {k: score(f) for k, f in forecasts.items()}
    if pred.quantiles is not None and "ets" in scores:
        try:
            q = ets_quantiles(padded, split.val_end, origins, h, season, pred.levels)
        except (ValueError, np.linalg.LinAlgError) as err:
            descriptions["ets"] += f" (no interval: {err})".splitlines()[0]
        else:
            scores["ets"]["coverage"] = coverage(actual[known], q[..., 0][known], q[..., -1][known])
            scores["ets"]["pinball"] = pinball(actual[known], q[known], pred.levels)
    metrics = {
        "model": model_metrics,
        "baselines": scores,
        "baseline_models": descriptions,
        "skipped_baselines": skipped,
        "test": {
            "rows": split.test_size,
            "origins": len(origins),
            "horizon": h,
            "first": _label(series, split.val_end),
            "last": _label(series, split.n - 1),
            "season": season,
            "mase_season": m,
        },
    }
    return Evaluation(origins, actual, pred, forecasts, metrics)


def _label(series: Series, row: int) -> str:
    label = series.index[row]
    return str(label.date()) if hasattr(label, "date") else str(label)


def backtest(
    series: Series,
    config: ForecastConfig,
    train: TrainConfig,
    folds: int,
    test_size: int | None = None,
    reporter: Reporter | None = None,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
    baselines: tuple[str, ...] = BASELINES,
    future: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Rolling-origin evaluation over ``folds`` consecutive test blocks of ``test_size`` rows
    (``future``: the known-future covariates, as for :class:`Forecaster`).

    Fold ``k`` trains a fresh model (same seed) on everything before its block and scores
    it with :func:`evaluate`. Returns ``{"folds": [metrics...], "mean": {name: metrics}}``
    where ``mean`` averages each metric over the folds (a baseline skipped in any fold is
    left out of the mean).
    """
    size = test_size or config.test_rows
    fold_config = dataclasses.replace(config, test_size=size)
    ends = [len(series) - (folds - k - 1) * size for k in range(folds)]
    splits = [Forecaster(fold_config).split(series.head(end)) for end in ends]  # may raise
    results = []
    for k, split in enumerate(splits):
        part = series.head(split.n)
        if reporter is not None:
            reporter.message(f"fold {k + 1}/{folds}: test rows {split.val_end}..{split.n - 1}")
        model = Forecaster(fold_config, future=future)
        model.fit(part, train, split=split, reporter=reporter)
        say = reporter.message if reporter is not None else None
        fold = evaluate(model, part, split, baselines, progress=say).metrics
        fold["fold"] = k + 1
        results.append(fold)
        if on_fold is not None:
            on_fold(k, fold)
    names = ["model"] + [b for b in BASELINES if all(b in r["baselines"] for r in results)]
    mean = {}
    for name in names:
        rows = [r["model"] if name == "model" else r["baselines"][name] for r in results]
        keys = [k for k in rows[0] if all(k in row for row in rows)]
        mean[name] = {k: float(np.mean([row[k] for row in rows])) for k in keys}
    return {"folds": results, "mean": mean, "test_size": size}


def metrics_table(rows: dict[str, dict[str, float]], notes: dict[str, str] | None = None) -> str:
    """A plain-text table: one row per name, columns MAE, RMSE, sMAPE%, MASE (+ coverage)."""
    cols = [("mae", "MAE"), ("rmse", "RMSE"), ("smape", "sMAPE%"), ("mase", "MASE")]
    if any("coverage" in r for r in rows.values()):
        cols.append(("coverage", "cover"))
    width = max([len(n) for n in rows] + [8])
    lines = [f"{'':<{width}}  " + "  ".join(f"{title:>9}" for _, title in cols)]
    for name, row in rows.items():
        cells = "  ".join(
            f"{row[k]:>9.4g}" if k in row and np.isfinite(row[k]) else f"{'-':>9}" for k, _ in cols
        )
        note = f"  {notes[name]}" if notes and name in notes else ""
        lines.append(f"{name:<{width}}  {cells}{note}")
    return "\n".join(lines)
