"""``forecast backtest`` across many series: a fresh global model per rolling fold.

Fold ``f = 1..k`` (oldest first) cuts the last ``(k - f) x H`` points off every series
and runs :func:`~lstmlens.tasks.global_run.run_global` on what is left, so each fold
tests the ``H`` points after its cut, for every series, from one origin; nothing of
a fold's test part or later is seen by its model, its scalers or its baselines. The
result holds each fold's aggregates (``model`` and ``baselines``, as in
``metrics.json``) and their means over the folds (``mean``); on a rank > 0 of a
distributed run, where rank 0 alone scores, both are empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.panel import Panel
from .global_run import run_global

__all__ = ["backtest_global"]


def _mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = set.intersection(*(set(k for k, v in r.items() if not isinstance(v, dict))
                              for r in rows))  # fmt: skip
    return {k: float(np.nanmean([r[k] for r in rows])) for k in sorted(keys)}


def backtest_global(
    panel: Panel,
    folds: int,
    window: int,
    horizon: int,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
    **run: Any,
) -> dict[str, Any]:
    """``{"folds": [{"model", "baselines", "series", "skipped"}], "mean": {name: {...}}}``;
    ``run`` goes to :func:`run_global` (season, net, options, baselines, ...)."""
    if folds < 1:
        raise ValueError(f"backtest: folds must be >= 1, got {folds}")
    results = []
    for f in range(folds):
        past = panel.trim_end((folds - 1 - f) * horizon)
        if len(past) == 0:
            raise ValueError(f"backtest: fold {f + 1} of {folds} leaves no series")
        metrics = run_global(past, None, window, horizon, **run)
        if "model" not in metrics:  # a rank > 0 of a distributed run: rank 0 scores
            continue
        fold = {k: metrics[k] for k in ("model", "baselines", "series", "skipped")}
        results.append(fold)
        if on_fold is not None:
            on_fold(f, fold)
    if not results:
        return {"folds": [], "mean": {}}
    names = set.intersection(*(set(r["baselines"]) for r in results))
    mean = {"model": _mean([r["model"] for r in results])}
    mean.update({n: _mean([r["baselines"][n] for r in results]) for n in sorted(names)})
    return {"folds": results, "mean": mean}
