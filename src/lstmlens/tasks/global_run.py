"""One global model over many series: train, evaluate, save and load a run folder.

Two protocols, one network (:class:`~lstmlens.tasks.segment_model.SegmentNet`, fed
standardised windows drawn lazily by :class:`~lstmlens.data.panel_windows.PanelWindows`):

- ``"ltsf"`` (:func:`run_ltsf`): the long-horizon benchmark protocol of
  :mod:`lstmlens.tasks.ltsf`; ``metrics.json`` -> ``model.mse``, ``model.mae`` on the
  z-normalised scale beside ``baselines.naive`` (repeat the last value).
- ``"last"`` (:func:`run_global`): each series' last ``H`` points are its test part
  (docs/design.md), the ``H`` before validate, the rest trains; scores on the
  original scale per series (MAE, RMSE, sMAPE, MASE) for the model and the naive and
  seasonal-naive baselines; ``metrics.json`` keeps aggregates (means over series) in
  ``model`` and ``baselines``, each series in ``per_series``, and the share of series
  where the model beats each baseline in ``model.beats``.

A run folder holds ``model.safetensors``, ``config.json`` (``task: "forecast"``,
``kind: "global"``, the network config, the series ids and scalers) and
``metrics.json``, each written atomically.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.panel import Panel
from ..data.panel_windows import PanelScaler, PanelWindows, last_h_split
from ..train.checkpoint import load_model, save_json_atomic, save_model
from .baselines import naive, seasonal_naive
from .global_season import SeasonalIndex
from .ltsf import ltsf_data, scores
from .metrics import all_metrics
from .segment_model import SegmentConfig, SegmentNet

__all__ = ["FORMAT_VERSION", "TrainOptions", "fit", "load_global", "predict", "run_global",
           "run_ltsf"]  # fmt: skip

FORMAT_VERSION = 1


def smape_loss(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Symmetric MAPE as a fraction, ``mean(2 |f - y| / (|f| + |y|))``; scale-free, so
    exact on the ``"mean"``-scaled series (no shift)."""
    return (2 * (pred - truth).abs() / (pred.abs() + truth.abs()).clamp_min(1e-8)).mean()


#: Training losses by name, on the scaled series.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mae": torch.nn.functional.l1_loss,
    "mse": torch.nn.functional.mse_loss,
    "smape": smape_loss,
}


#: Clocks for ``max_minutes``: wall time, or CPU time of this process (a budget that
#: does not shrink when other processes share the cores; with one thread it is the wall
#: time of an idle machine).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.monotonic, "cpu": time.process_time}


@dataclass(frozen=True)
class TrainOptions:
    """How to train the global model."""

    epochs: int = 10  # passes over all training windows
    batch_size: int = 256  # windows per step
    lr: float = 1e-3  # Adam learning rate
    loss: str = "mae"  # a key of LOSSES (SegRNN trains with the MAE)
    patience: int = 3  # epochs without a better validation loss before stopping
    max_minutes: float | None = None  # stop training after this time (see clock)
    clock: str = "wall"  # max_minutes in "wall" time or this process's "cpu" time
    max_steps_per_epoch: int | None = None  # cap on batches per epoch (huge panels)
    seed: int = 0  # weight init and window order


def _channels(net: SegmentNet, series: torch.Tensor) -> torch.Tensor | None:
    return series if net.config.channels else None


def predict(
    net: SegmentNet, windows: PanelWindows, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pred, truth, series)``: ``(n, H)``, ``(n, H)`` on the standardised scale and the
    series number of each window ``(n,)``, for every window of ``windows`` in order."""
    net.eval()
    preds, truths, which = [], [], []
    with torch.no_grad():
        for x, y, i in windows.batches(batch_size):
            preds.append(net(x, _channels(net, i)).numpy())
            truths.append(y.numpy())
            which.append(i.numpy())
    h = windows.horizon
    cat = lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape)
    return cat(preds, (0, h)), cat(truths, (0, h)), cat(which, (0,)).astype(np.int64)


def fit(
    net: SegmentNet,
    train: PanelWindows,
    val: PanelWindows | None,
    options: TrainOptions,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train with Adam; keep the weights of the best validation loss. Returns a history."""
    say = log or (lambda _: None)
    if len(train) == 0:
        raise ValueError("fit: no training windows (series too short for window + horizon)")
    loss_fn = LOSSES[options.loss]
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=options.lr)
    started = time.monotonic()
    if options.clock not in CLOCKS:
        raise ValueError(f"TrainOptions: clock must be one of {sorted(CLOCKS)}")
    clock = CLOCKS[options.clock]
    deadline = None if options.max_minutes is None else clock() + 60 * options.max_minutes
    best, best_state, waited, history = math.inf, None, 0, []
    stopped = "epochs"
    for epoch in range(options.epochs):
        net.train()
        total, count = 0.0, 0
        for step, (x, y, i) in enumerate(train.batches(options.batch_size, True, generator)):
            if options.max_steps_per_epoch is not None and step >= options.max_steps_per_epoch:
                break
            out = net(x, _channels(net, i))  # (B, H), or (K, B, H) for an ensemble
            loss = loss_fn(out, y.expand_as(out))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(x), count + len(x)
            if deadline is not None and clock() > deadline:
                stopped = "time"
                break
        val_loss = math.nan
        if val is not None and len(val):
            pred, truth, _ = predict(net, val)
            val_loss = float(loss_fn(torch.from_numpy(pred), torch.from_numpy(truth)))
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1),
                        "val_loss": val_loss, "seconds": time.monotonic() - started})  # fmt: skip
        say(f"epoch {epoch + 1}: train {total / max(count, 1):.4f} val {val_loss:.4f} "
            f"({time.monotonic() - started:.0f} s)")  # fmt: skip
        score = val_loss if not math.isnan(val_loss) else total / max(count, 1)
        if score < best:
            best, best_state, waited = score, copy.deepcopy(net.state_dict()), 0
        else:
            waited += 1
        if stopped == "time":
            break
        if waited >= options.patience:
            stopped = "patience"
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return {"epochs": history, "stopped": stopped, "seconds": time.monotonic() - started}


def _save(run_dir: Path, net: SegmentNet, extra: dict[str, Any], metrics: dict[str, Any]) -> None:
    config = {"task": "forecast", "kind": "global", "format_version": FORMAT_VERSION,
              "net": net.config.to_dict(), **extra}  # fmt: skip
    save_model(run_dir, net, config)
    save_json_atomic(run_dir / "metrics.json", metrics)


def load_global(run_dir: str | os.PathLike) -> tuple[SegmentNet, PanelScaler, dict[str, Any]]:
    """The network, the per-series scaler and the config of a run saved by this module."""
    net, config = load_model(run_dir, lambda c: SegmentNet(SegmentConfig(**c["net"])))
    if config.get("kind") != "global":
        raise ValueError(f"{run_dir}: not a global-model run (kind {config.get('kind')!r})")
    return net, PanelScaler.from_dict(config["scaler"]), config


def _net(panel: Panel, window: int, horizon: int, net: dict[str, Any]) -> SegmentNet:
    return SegmentNet(SegmentConfig(window=window, horizon=horizon, **net))


def run_ltsf(
    panel: Panel,
    run_dir: str | os.PathLike,
    window: int,
    horizon: int,
    split: str,
    net: dict[str, Any] | None = None,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train and score under the ltsf protocol; write the run folder; return the metrics."""
    data = ltsf_data(panel, window, horizon, split)
    torch.manual_seed(options.seed)
    model = _net(panel, window, horizon, net or {})
    history = fit(model, data.train, data.val, options, log)
    pred, truth, which = predict(model, data.test)
    x_last = data.test.z[torch.from_numpy(_origin_rows(data.test) - 1)].numpy()  # (n,)
    last = np.repeat(x_last[:, None], horizon, 1)  # (n, H) the repeat-last-value forecast
    metrics = {
        "protocol": "ltsf",
        "split": list(data.sizes),
        "window": window,
        "horizon": horizon,
        "test_windows": int(len(data.test)),
        "model": scores(pred, truth),
        "baselines": {"naive": scores(last, truth)},
        "per_series": [
            {
                "id": name,
                "model": scores(pred[which == i], truth[which == i]),
                "naive": scores(last[which == i], truth[which == i]),
            }
            for i, name in enumerate(panel.ids)
        ],  # fmt: skip
        "training": history,
    }
    _save(Path(run_dir), model, {"ids": list(panel.ids), "scaler": data.scaler.to_dict(),
                                 "protocol": "ltsf", "split": split}, metrics)  # fmt: skip
    return metrics


def _origin_rows(windows: PanelWindows) -> np.ndarray:
    """Flat row number of every window's origin, in window order, shape ``(n,)``."""
    i, o = windows.locate(np.arange(len(windows)))
    return windows.offsets[i] + o


def run_global(
    panel: Panel,
    run_dir: str | os.PathLike,
    window: int,
    horizon: int,
    season: int | None = None,
    net: dict[str, Any] | None = None,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] | None = None,
    val_horizons: int = 1,
    scaling: str = "standard",
    deseasonalise: bool = False,
) -> dict[str, Any]:
    """Train one model on every series' training part, forecast each series' last ``H``
    points, score per series beside naive and seasonal naive; write the run folder.

    ``val_horizons`` horizons before the test part validate (0: none; the best epoch is
    then the one of the lowest training loss). Series shorter than
    ``window + (2 + val_horizons) * horizon`` (one training window, validation and test)
    are skipped and named in ``metrics["skipped"]``. ``scaling`` is the per-series
    scaler's kind (:meth:`PanelScaler.fit`: ``"standard"`` or ``"mean"``);
    ``deseasonalise`` divides each series by its multiplicative seasonal index
    (:class:`~lstmlens.tasks.global_season.SeasonalIndex`, fitted on its training rows,
    as Theta does) before scaling and multiplies the forecasts back."""
    say = log or (lambda _: None)
    panel, skipped = panel.drop_short(window + (2 + val_horizons) * horizon)
    if skipped:
        say(f"skipped {len(skipped)} series too short for one window: "
            f"{', '.join(skipped[:10])}{' ...' if len(skipped) > 10 else ''}")  # fmt: skip
    split = last_h_split(panel.lengths, horizon, val=val_horizons)
    seasonal = (
        SeasonalIndex.fit(panel, split.train_end, season) if deseasonalise and season else None
    )
    adjusted = (
        panel if seasonal is None else replace(panel, values=panel.values / seasonal.flat(panel))
    )
    scaler = PanelScaler.fit(adjusted, split.train_end, scaling)
    z = scaler.transform(adjusted)

    def part(name: str, stride: int = 1) -> PanelWindows:
        start, stop = split.part(name)
        return PanelWindows(z, panel.offsets, start, stop, window, horizon, stride)

    torch.manual_seed(options.seed)
    model = _net(panel, window, horizon, net or {})
    history = fit(model, part("train"), part("val") if val_horizons else None, options, log)
    test = part("test", stride=horizon)
    pred_z, _, which = predict(model, test)
    pred = scaler.inverse(pred_z, which)  # (n, H) original scale
    if seasonal is not None:
        pred = pred * seasonal.factors(which, split.val_end[which], horizon)
    per_series: list[dict[str, Any]] = []
    sums: dict[str, dict[str, list[float]]] = {}
    m = season or 1
    for k, i in enumerate(which):
        y = panel.series(i)
        o = int(split.val_end[i])
        actual = y[o : o + horizon]
        origins = np.array([o])
        forecasts = {"model": pred[k], "naive": naive(y, origins, horizon)[0]}
        if season and o >= season:
            forecasts["seasonal_naive"] = seasonal_naive(y, origins, horizon, season)[0]
        row = {name: all_metrics(actual, f, y[:o], m) for name, f in forecasts.items()}
        per_series.append({"id": panel.ids[i], **row})
        for name, values in row.items():
            for key, v in values.items():
                sums.setdefault(name, {}).setdefault(key, []).append(v)
    aggregate = {name: {key: float(np.nanmean(v)) for key, v in d.items()}
                 for name, d in sums.items()}  # fmt: skip
    model_row: dict[str, Any] = aggregate.pop("model")
    model_row["beats"] = {
        name: float(np.mean([r["model"]["mae"] < r[name]["mae"] for r in per_series if name in r]))
        for name in aggregate
    }
    metrics = {
        "protocol": "last",
        "window": window,
        "horizon": horizon,
        "season": season,
        "series": len(panel),
        "skipped": list(skipped),
        "model": model_row,
        "baselines": aggregate,
        "per_series": per_series,
        "training": history,
    }
    _save(Path(run_dir), model, {"ids": list(panel.ids), "scaler": scaler.to_dict(),
                                 "protocol": "last", "options": asdict(options),
                                 "season_index": None if seasonal is None else seasonal.to_dict()},
          metrics)  # fmt: skip
    return metrics
