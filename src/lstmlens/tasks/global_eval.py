"""Scoring many series: the model and per-series baselines on the same windows.

Series ``i`` is forecast from its origin ``o_i`` (the first test row): the model's
forecast ``(H,)`` and each baseline of :mod:`lstmlens.tasks.baselines` (naive,
seasonal naive, ETS, Theta, ... fitted on ``y_i[:o_i]`` only) are scored on
``y_i[o_i : o_i + H]`` by MAE, RMSE, sMAPE and MASE (scaled by the in-sample
seasonal-naive error, period ``m``). The result keeps

* ``per_series``: one entry per series, ``{"id", "model": {...}, NAME: {...}, "ratio"}``
  with ``ratio = MAE_model / MAE_reference`` (the reference is seasonal naive, or
  naive without a season; ``nan`` when the reference is exact);
* ``model``: the mean of each metric over the series, and ``beats``: for each
  baseline, the share of the series (where it ran) on which the model's MAE is lower;
* ``baselines``: each baseline's means over the series where it ran, with ``series``,
  the count (a fitted baseline is left out of a series when the shared time budget is
  spent or the fit fails; ``skipped_baselines`` counts the reasons).

The fitted baselines of all series share one time budget (``budget_s``); progress is
reported every tenth of the series (at least every 10).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.panel import Panel
from .baselines import BUDGET_S, run_baselines
from .metrics import all_metrics

__all__ = ["GLOBAL_BASELINES", "REFERENCES", "score_panel"]

#: Baselines scored per series by default (the competition's usual set).
GLOBAL_BASELINES = ("naive", "seasonal_naive", "ets", "theta")
#: Baselines the per-series error ratio is taken against, first available wins.
REFERENCES = ("seasonal_naive", "naive")
_FITTED = ("ets", "theta", "arima")


def _mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else ()
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def score_panel(
    panel: Panel,
    origins: np.ndarray,
    forecasts: np.ndarray,
    horizon: int,
    season: int | None,
    baselines: tuple[str, ...] = GLOBAL_BASELINES,
    budget_s: float | None = BUDGET_S,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score the model's ``forecasts`` ``(N, H)`` (row ``i``: series ``i`` from origin
    ``origins[i]``) and every baseline in ``baselines``; see the module docstring."""
    say = progress or (lambda _: None)
    m = season or 1
    started = time.monotonic()
    per_series: list[dict[str, Any]] = []
    reasons: dict[str, Counter[str]] = {}
    step = max(10, len(panel) // 10)
    for i in range(len(panel)):
        y, o = panel.series(i), int(origins[i])
        actual = y[o : o + horizon]
        left = None if budget_s is None else budget_s - (time.monotonic() - started)
        names = baselines
        if left is not None and left <= 0:
            names = tuple(n for n in baselines if n not in _FITTED)
            for n in set(baselines) - set(names):
                reasons.setdefault(n, Counter())[f"the time budget ({budget_s:g} s) was spent"] += 1
        found, _, skipped = run_baselines(y, o, np.array([o]), horizon, season, names,
                                          budget_s=left)  # fmt: skip
        for name, why in skipped.items():
            reasons.setdefault(name, Counter())[why] += 1
        row: dict[str, Any] = {"id": panel.ids[i]}
        row["model"] = all_metrics(actual, forecasts[i], y[:o], m)
        for name in baselines:
            if name in found:
                row[name] = all_metrics(actual, found[name][0], y[:o], m)
        ref = next((r for r in REFERENCES if r in row), None)
        ref_mae = row[ref]["mae"] if ref else np.nan
        row["ratio"] = float(row["model"]["mae"] / ref_mae) if ref_mae > 0 else float("nan")
        per_series.append(row)
        if (i + 1) % step == 0 or i + 1 == len(panel):
            say(f"scored {i + 1}/{len(panel)} series ({time.monotonic() - started:.0f} s)")
    model: dict[str, Any] = _mean_rows([r["model"] for r in per_series])
    table: dict[str, dict[str, float]] = {}
    beats: dict[str, float] = {}
    for name in baselines:
        have = [r for r in per_series if name in r]
        if not have:
            continue
        table[name] = {**_mean_rows([r[name] for r in have]), "series": len(have)}
        beats[name] = float(np.mean([r["model"]["mae"] < r[name]["mae"] for r in have]))
    model["beats"] = beats
    skipped = {name: "; ".join(f"{why} ({k} series)" for why, k in c.most_common())
               for name, c in reasons.items()}  # fmt: skip
    reference = next((r for r in REFERENCES if r in table), None)
    return {"model": model, "baselines": table, "skipped_baselines": skipped,
            "ratio_reference": reference, "per_series": per_series}  # fmt: skip
