"""Forecast pictures (PNG, matplotlib without pyplot): the test forecast and the training curve.

* :func:`forecast_figure`: the recent history, the test values, the model's forecast
  with its interval (when quantiles were trained) and the best baseline's forecast.
* :func:`training_curve_figure`: training and validation loss per epoch, with the
  epoch whose weights were kept marked.

Figures are built on the Agg canvas (no display, no global state) and written atomically.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..data.series import Series
from ..io import save_png
from .forecast_eval import Evaluation

__all__ = ["forecast_figure", "save_png", "training_curve_figure"]


def _flat(
    origins: np.ndarray, values: np.ndarray, n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and values of ``(N, H)`` forecasts laid end to end (origins are H apart), the
    rows past the end ``n`` of the series (a partial last block) left out."""
    h = values.shape[1]
    rows = (origins[:, None] + np.arange(h)[None, :]).ravel()  # (N * H,)
    keep = np.ones(len(rows), dtype=bool) if n is None else rows < n
    return rows[keep], values.ravel()[keep]


def forecast_figure(series: Series, ev: Evaluation, history: int | None = None) -> Figure:
    """History, test part, model forecast (+ interval) and the best baseline.

    ``history``: how many rows before the test part to show (default: 3 test parts, at
    least 36 and at most everything).
    """
    first = int(ev.origins[0])
    test_rows = int(np.isfinite(ev.actual).sum())
    keep = max(36, 3 * test_rows) if history is None else history
    start = max(0, first - keep)
    x: pd.Index = series.index
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(x[start:first], series.values[start:first], color="#444444", lw=1.2, label="history")
    rows, actual = _flat(ev.origins, ev.actual, len(series))
    ax.plot(x[rows], actual, color="black", lw=1.2, ls=":", label="test (actual)")
    best = ev.best_baseline()
    if best is not None:
        _, base = _flat(ev.origins, ev.baselines[best], len(series))
        mae = ev.metrics["baselines"][best]["mae"]
        ax.plot(x[rows], base, color="#ff7f0e", lw=1.2, ls="--", label=f"{best} (MAE {mae:.4g})")
    _, point = _flat(ev.origins, ev.model.point, len(series))
    mae = ev.metrics["model"]["mae"]
    ax.plot(x[rows], point, color="#1f77b4", lw=1.6, label=f"LSTM (MAE {mae:.4g})")
    if ev.model.quantiles is not None:
        _, lo = _flat(ev.origins, ev.model.quantiles[..., 0], len(series))
        _, hi = _flat(ev.origins, ev.model.quantiles[..., -1], len(series))
        levels = ev.model.levels
        ax.fill_between(
            x[rows], lo, hi, color="#1f77b4", alpha=0.2, lw=0,
            label=f"LSTM {levels[0]:g}-{levels[-1]:g} interval",
        )  # fmt: skip
    h = ev.actual.shape[1]
    ax.set_title(f"{series.name}: test forecasts, horizon {h}, {len(ev.origins)} origin(s)")
    ax.set_ylabel(series.name)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def training_curve_figure(history: list[dict[str, Any]], best_epoch: int | None = None) -> Figure:
    """Train and validation loss per epoch (log scale when all are positive)."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for key, colour in (("train_loss", "#1f77b4"), ("val_loss", "#d62728")):
        values = [r.get(key, np.nan) for r in history]
        ax.plot(epochs, values, color=colour, lw=1.4, label=key.replace("_", " "))
    values = [v for r in history for k, v in r.items() if k in ("train_loss", "val_loss")]
    if values and min(values) > 0:
        ax.set_yscale("log")
    if best_epoch:
        ax.axvline(best_epoch, color="#2ca02c", ls="--", lw=1, label=f"kept: epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (model scale)")
    ax.set_title("training curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig
