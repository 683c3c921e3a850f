"""``forecast predict`` for a global run: every series forecast past its end, one long CSV.

Series ``i`` (``T_i`` points) is read again (the run's data file, or another file read
the same way) and forecast from its last ``W`` points:

    y_hat_i = s_i * net(z_i[T_i - W : T_i], i) + m_i          # (H,), the run's scaler

(with a deseasonalised run, the inputs are divided and the forecasts multiplied by the
series' seasonal index, as in training).

With interval levels stored in the run (``--quantiles``, from the validation residuals
``r`` on the standardised scale, per horizon step ``h``), the quantile ``q`` is
``s_i * (net(...)_h + Q_q(r_h)) + m_i``. The CSV is long: one row per series and step,

    id,date,value[,q0.1,q0.5,q0.9]

``date`` the time label after the series' end (dates when the run's frequency is known,
else step numbers). A series the run has not seen, or one shorter than ``W``, is refused
or skipped (named on stderr by the caller).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.panel import Panel, read_panel
from ..runfiles import is_regular_file
from .global_anchor import blend, end_anchor
from .global_run import load_global
from .global_season import SeasonalIndex

__all__ = ["future_labels", "panel_forecast", "predict_csv", "run_panel"]


def run_panel(run: Path, config: dict[str, Any], data: str | None = None, **dialect) -> Panel:
    """The run's series: its data file (``config["data"]``) or ``data`` read the same way."""
    spec = dict(config.get("data") or {})
    if data is None:
        if not spec or not is_regular_file(spec.get("path")):
            raise ValueError(f"{run / 'config.json'}: data.path names no regular file; pass --data")
    else:
        spec["path"] = data
    if not spec.get("target"):
        raise ValueError(f"{run / 'config.json'}: the run records no target; it cannot reread data")
    spec.update({k: v for k, v in dialect.items() if v is not None})
    return read_panel(spec["path"], spec["target"], spec.get("id"), spec.get("date"),
                      spec.get("fill"), spec.get("sep"), spec.get("decimal"))  # fmt: skip


def future_labels(start: object, length: int, steps: int, freq: str | None) -> list[str]:
    """The ``steps`` time labels after a series of ``length`` points starting at ``start``."""
    if isinstance(start, pd.Timestamp) and freq:
        dates = pd.date_range(start, periods=length + steps, freq=freq)[length:]
        return [str(d.date()) if d == d.normalize() else str(d) for d in dates]
    first = int(start) if isinstance(start, (int, np.integer)) else 0
    return [str(first + length + k) for k in range(steps)]


def panel_forecast(
    run_dir: str | os.PathLike, panel: Panel, steps: int | None = None
) -> tuple[list[int], np.ndarray, np.ndarray | None, tuple[float, ...], list[str]]:
    """``(series, point (n, S), quantiles (n, S, Q) or None, levels, skipped)`` for every
    series of ``panel`` long enough for one window; ``series`` are row numbers of
    ``panel``, ``skipped`` the names of the too-short ones."""
    net, scaler, config = load_global(run_dir)
    window, horizon = net.config.window, net.config.horizon
    steps = steps or horizon
    if steps > horizon:
        raise ValueError(f"the global model forecasts at most its horizon ({horizon} steps), "
                         f"got --steps {steps}")  # fmt: skip
    known = {name: k for k, name in enumerate(config["ids"])}
    unknown = [name for name in panel.ids if name not in known]
    if unknown:
        raise ValueError(f"series {unknown[0]!r} was not in the run's training data "
                         f"({len(unknown)} such series); the model knows its scalers only")  # fmt: skip
    rows = [i for i in range(len(panel)) if panel.lengths[i] >= window]
    skipped = [panel.ids[i] for i in range(len(panel)) if panel.lengths[i] < window]
    if not rows:
        raise ValueError(f"no series has the {window} points one window needs")
    number = np.array([known[panel.ids[i]] for i in rows], dtype=np.int64)  # (n,) run's numbers
    x = np.stack([panel.series(i)[-window:] for i in rows])  # (n, W)
    ends = panel.lengths[rows]  # (n,)
    season = None
    if config.get("season_index"):  # the network saw y / s[t mod m]; forecasts times s
        season = SeasonalIndex.from_dict(config["season_index"])
        x = x / season.factors(number, ends - window, window)
    z = (x - scaler.mean[number, None]) / scaler.std[number, None]
    dtype = next(net.parameters()).dtype
    factor = (
        np.ones((len(rows), horizon)) if season is None else season.factors(number, ends, horizon)
    )
    more = {}
    if config.get("anchor"):  # the statistical model refitted on each series' every row
        a = _end_anchors(panel, rows, horizon, config["season"], config["anchor"]) / factor
        a = np.where(np.isnan(a), x[:, -1:], a)  # a failed fit: the last level, as in training
        a = (a - scaler.mean[number, None]) / scaler.std[number, None]
        more["anchor"] = torch.as_tensor(a, dtype=dtype)
    with torch.no_grad():
        pred = net(torch.as_tensor(z, dtype=dtype), torch.from_numpy(number), **more)
    pred = pred.double().numpy()
    factor = factor[:, :steps]
    point = scaler.inverse(pred, number)[:, :steps] * factor
    shift = np.zeros_like(point)
    if config.get("blend"):  # the mean with the statistical model fitted on every row
        whole = np.asarray([panel.lengths[i] for i in rows])
        blended = blend(point, panel, np.asarray(rows), whole, whole, config["season"],
                        config["blend"])  # fmt: skip
        point, shift = blended, blended - point
    intervals = config.get("intervals")
    if not intervals:
        return rows, point, None, (), skipped
    levels = tuple(intervals["levels"])
    spread = np.asarray(intervals["residuals"])[:steps]  # (S, Q)
    quant = scaler.inverse(pred[:, :steps, None] + spread[None], number) * factor[..., None]
    quant = quant + shift[..., None]
    return rows, point, np.sort(quant, axis=-1), levels, skipped  # quant: (n, S, Q)


def _end_anchors(panel: Panel, rows: list[int], horizon: int, season: int | None,
                 kind: str) -> np.ndarray:  # fmt: skip
    """Each series' anchor past its end ``(n, H)``, original scale (NaN where the fit
    fails)."""
    out = [end_anchor(panel.series(i), horizon, season, kind) for i in rows]
    return np.stack([np.full(horizon, np.nan) if a is None else a for a in out])


def predict_csv(
    run_dir: str | os.PathLike, data: str | None = None, steps: int | None = None, **dialect
) -> tuple[str, int, list[str]]:
    """The long CSV (see the module docstring): ``(text, rows written, skipped series)``."""
    run_dir = Path(run_dir)
    _, _, config = load_global(run_dir)
    panel = run_panel(run_dir, config, data, **dialect)
    rows, point, quant, levels, skipped = panel_forecast(run_dir, panel, steps)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "date", "value", *(f"q{q:g}" for q in levels)])
    for k, i in enumerate(rows):
        labels = future_labels(panel.starts[i] if panel.starts else 0, int(panel.lengths[i]),
                               point.shape[1], panel.freq)  # fmt: skip
        for h, label in enumerate(labels):
            extra = [] if quant is None else [f"{v:.6g}" for v in quant[k, h]]
            writer.writerow([panel.ids[i], label, f"{point[k, h]:.6g}", *extra])
    return buffer.getvalue(), len(rows) * point.shape[1], skipped
