"""Pictures of a global run (PNG, matplotlib without pyplot, written atomically).

* :func:`series_grid_figure` (``forecasts.png``): a few series picked by their error
  ratio ``r_i = MAE_model / MAE_reference`` (the reference is seasonal naive, or naive
  without a season): the best, the median and the worst, each with its recent history,
  the test values and the model's forecast.
* :func:`ratio_histogram_figure` (``error_ratio.png``): the distribution of ``r_i`` over
  every series on a log axis, with ``r = 1`` (as good as the reference) and the median
  marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from ..data.panel import Panel
from ..io import save_png

__all__ = ["pick_series", "ratio_histogram_figure", "save_global_plots", "series_grid_figure"]

GRID_FILE = "forecasts.png"
RATIO_FILE = "error_ratio.png"


def _times(panel: Panel, i: int) -> np.ndarray:
    """The time labels of series ``i``: dates when its start and the frequency are known,
    else step numbers."""
    n, start = len(panel.series(i)), panel.starts[i] if panel.starts else None
    if isinstance(start, pd.Timestamp) and panel.freq:
        return pd.date_range(start, periods=n, freq=panel.freq).to_numpy()
    return np.arange(n)


def pick_series(ratios: np.ndarray, per_pick: int = 1) -> dict[str, list[int]]:
    """Series numbers of the best, median and worst ``per_pick`` by ``ratios`` ``(N,)``
    (series with no finite ratio are left out; ``{}`` when none has one)."""
    ok = np.flatnonzero(np.isfinite(ratios))
    if not len(ok):
        return {}
    order = ok[np.argsort(ratios[ok], kind="stable")]
    mid = max(0, len(order) // 2 - per_pick // 2)
    picks = {"best": order[:per_pick], "median": order[mid : mid + per_pick],
             "worst": order[::-1][:per_pick]}  # fmt: skip
    return {k: [int(i) for i in v] for k, v in picks.items()}


def series_grid_figure(
    panel: Panel,
    origins: np.ndarray,
    forecasts: np.ndarray,
    ratios: np.ndarray,
    reference: str | None,
    history: int | None = None,
) -> Figure:
    """One panel per picked series: history, test values and forecast (see module doc)."""
    picks = pick_series(ratios)
    horizon = forecasts.shape[1]
    back = history or 4 * horizon
    fig = Figure(figsize=(10, 2.6 * max(len(picks), 1)))
    axes = fig.subplots(max(len(picks), 1), 1, squeeze=False)[:, 0]
    if not picks:
        axes[0].text(0.5, 0.5, "no series has a finite error ratio", ha="center")
    for ax, (label, (i,)) in zip(axes, picks.items(), strict=False):
        y, o = panel.series(i), int(origins[i])
        lo, t = max(0, o - back), _times(panel, i)
        ax.plot(t[lo:o], y[lo:o], color="0.3", lw=1, label="history")
        ax.plot(t[o : o + horizon], y[o : o + horizon], color="k", lw=1.5, label="actual")
        ax.plot(t[o : o + horizon], forecasts[i], color="C0", lw=1.5, label="global model")
        ax.axvline(t[o], color="0.7", lw=0.8, ls=":")
        ax.set_title(f"{label}: {panel.ids[i]} (MAE ratio to {reference} {ratios[i]:.2f})",
                     fontsize=9)  # fmt: skip
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def ratio_histogram_figure(ratios: np.ndarray, reference: str | None) -> Figure:
    """Histogram of the finite positive per-series error ratios on a log axis."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    r = ratios[np.isfinite(ratios) & (ratios > 0)]
    if len(r):
        bins = np.geomspace(min(r.min(), 1.0) / 1.1, max(r.max(), 1.0) * 1.1, 31)
        ax.hist(r, bins=list(bins), color="C0", alpha=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axvline(1.0, color="k", lw=1, label="as good as the reference")
        ax.axvline(float(np.median(r)), color="C1", lw=1, ls="--",
                   label=f"median {np.median(r):.2f}")  # fmt: skip
        ax.legend(fontsize=8)
    beaten = float(np.mean(r < 1)) if len(r) else float("nan")
    ax.set_title(f"per-series MAE ratio to {reference} ({len(r)} series, model better on "
                 f"{100 * beaten:.0f}%)", fontsize=9)  # fmt: skip
    ax.set_xlabel("MAE model / MAE reference")
    ax.set_ylabel("series")
    fig.tight_layout()
    return fig


def save_global_plots(
    run_dir: Path, panel: Panel, origins: np.ndarray, forecasts: np.ndarray, metrics: dict[str, Any]
) -> list[Path]:
    """Write ``forecasts.png`` and ``error_ratio.png`` into ``run_dir``; their paths."""
    ratios = np.array([row["ratio"] for row in metrics["per_series"]], dtype=np.float64)
    reference = metrics.get("ratio_reference")
    grid = series_grid_figure(panel, origins, forecasts, ratios, reference)
    return [save_png(grid, run_dir / GRID_FILE),
            save_png(ratio_histogram_figure(ratios, reference), run_dir / RATIO_FILE)]  # fmt: skip
