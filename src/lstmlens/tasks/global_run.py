"""One global model over many series: train, evaluate, save and load a run folder.

Two protocols, one network (:class:`~lstmlens.tasks.global_net.GlobalNet`, a
segment-wise recurrent forecaster fed standardised windows drawn lazily by
:class:`~lstmlens.data.panel_windows.PanelWindows`):

- ``"ltsf"`` (:func:`run_ltsf`): the long-horizon benchmark protocol of
  :mod:`lstmlens.tasks.ltsf`; ``metrics.json`` -> ``model.mse``, ``model.mae`` on the
  z-normalised scale beside ``baselines.naive`` (repeat the last value).
- ``"last"`` (:func:`run_global`): each series' last ``H`` points are its test part
  (docs/design.md), the ``H`` before validate, the rest trains; the model and the
  per-series baselines (naive, seasonal naive, ETS, Theta by default) are scored on the
  original scale per series (:mod:`lstmlens.tasks.global_eval`); ``metrics.json`` keeps
  aggregates in ``model`` and ``baselines``, each series in ``per_series``, and the
  share of series where the model beats each baseline in ``model.beats``.

Training is the shared :class:`~lstmlens.train.Trainer` (task
:class:`~lstmlens.tasks.global_task.GlobalTask`): checkpoints every epoch into the run
folder, ``resume=True`` continues exactly (refusing a run of other data, series,
window, horizon or network), SIGINT/SIGTERM stop at once with a checkpoint, and under
``torch.distributed`` every rank trains its share of each batch.

A run folder holds ``model.safetensors``, ``config.json`` (``task: "forecast"``,
``kind: "global"``, the network config, the series ids, scalers and data spec),
``metrics.json``, ``forecasts.png`` (best, median and worst series) and
``error_ratio.png`` (the per-series error ratio to seasonal naive), each written
atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.panel import Panel
from ..data.panel_windows import PanelScaler, PanelWindows, last_h_split
from ..train import NullReporter, Reporter, TrainConfig, Trainer, distributed
from ..train.checkpoint import load_model, save_json_atomic, save_model
from .baselines import BUDGET_S
from .global_anchor import AnchoredWindows, check_kind, panel_anchor
from .global_anchor import blend as combine
from .global_eval import GLOBAL_BASELINES, score_panel
from .global_net import GlobalConfig, GlobalNet, standardise_static
from .global_season import SeasonalIndex
from .global_task import CLOCKS, LOSSES, GlobalTask, predict_windows, smape_loss, takes_series
from .ltsf import ltsf_data, scores

__all__ = ["CLOCKS", "FORMAT_VERSION", "LOSSES", "TrainOptions", "fit", "is_global_run",
           "load_global", "predict", "run_global", "run_ltsf", "smape_loss"]  # fmt: skip

FORMAT_VERSION = 1

#: ``predict(net, windows)``: every window's forecast (kept under its old name).
predict = predict_windows


@dataclass(frozen=True)
class TrainOptions:
    """How to train the global model (the :class:`TrainConfig` fields plus the batching)."""

    epochs: int = 10  # passes over all training windows
    batch_size: int = 256  # windows per step (the global batch with several processes)
    lr: float = 1e-3  # learning rate
    loss: str = "mae"  # a key of LOSSES (SegRNN trains with the MAE)
    patience: int | None = 3  # epochs without a better validation loss before stopping
    max_minutes: float | None = None  # stop training after this time (see clock)
    clock: str = "wall"  # max_minutes in "wall" time or this process's "cpu" time (CLOCKS)
    max_steps_per_epoch: int | None = None  # cap on batches per epoch (huge panels)
    seed: int = 0  # weight init and window order
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str | None = None  # None, "plateau" or "cosine"
    clip_norm: float | None = None  # clip the gradient norm (None: off)
    precision: str = "fp32"

    def train_config(self) -> TrainConfig:
        """The shared trainer's config (the time budget is the task's: any clock, and an
        epoch may end early)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)} - {"max_minutes"}
        return TrainConfig(**{k: v for k, v in asdict(self).items() if k in names})

    @classmethod
    def from_config(cls, config: TrainConfig, **more: Any) -> TrainOptions:
        """Options from a trainer config (``more``: ``batch_size``, ``loss``, ...)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in asdict(config).items() if k in names}, **more})


class _LogReporter(NullReporter):
    """Epoch lines and messages to a ``log`` callable (library use without a Reporter)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__()
        self._log = log

    def epoch_end(self, metrics) -> None:
        self._log(f"epoch {metrics['epoch']}: train {metrics['train_loss']:.4f} val "
                  f"{metrics['val_loss']:.4f} ({metrics['seconds']:.0f} s)")  # fmt: skip

    def message(self, text: str) -> None:
        self._log(text)

    def warning(self, text: str) -> None:
        self._log(f"warning: {text}")


def fit(
    net: torch.nn.Module,
    train: PanelWindows,
    val: PanelWindows | None,
    options: TrainOptions,
    log: Callable[[str], None] | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    spec: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Train with the shared :class:`Trainer`; keep the weights of the best validation loss
    (the lowest training loss without ``val``). Returns ``{"epochs": history, "stopped",
    "seconds", "best_epoch", "validation"}``; ``run_dir`` receives the checkpoints."""
    if len(train) == 0:
        raise ValueError("fit: no training windows (series too short for window + horizon)")
    if reporter is None:
        reporter = _LogReporter(log) if log is not None else NullReporter()
    if options.clock not in CLOCKS:
        raise ValueError(f"TrainOptions: clock must be one of {sorted(CLOCKS)}")
    budget = None if options.max_minutes is None else 60 * options.max_minutes
    alone = distributed.ranks().world_size == 1  # (ranks must take the same steps)
    task = GlobalTask(train, val, options.batch_size, options.loss, options.max_steps_per_epoch,
                      budget, options.clock, cut_epochs=alone,
                      series=takes_series(net))  # fmt: skip
    trainer = Trainer(net, task, options.train_config(),
                      run_dir=None if run_dir is None else Path(run_dir), reporter=reporter,
                      spec=spec)  # fmt: skip
    result = trainer.fit(resume=resume)
    net.eval()
    return {"epochs": result.history, "stopped": result.stopped, "seconds": result.seconds,
            "best_epoch": result.best_epoch, "validation": task.val is not None}  # fmt: skip


def _save(run_dir: Path, net: GlobalNet, extra: dict[str, Any], metrics: dict | None) -> None:
    config = {"task": "forecast", "kind": "global", "format_version": FORMAT_VERSION,
              "net": net.config.to_dict(), **extra}  # fmt: skip
    save_model(run_dir, net, config)
    if metrics is not None:
        save_json_atomic(run_dir / "metrics.json", metrics)


def is_global_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir/config.json`` says ``kind: "global"`` (False if unreadable)."""
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("kind") == "global"


def load_global(run_dir: str | os.PathLike) -> tuple[GlobalNet, PanelScaler, dict[str, Any]]:
    """The network, the per-series scaler and the config of a run saved by this module."""
    net, config = load_model(run_dir, lambda c: GlobalNet(GlobalConfig(**c["net"])))
    if config.get("kind") != "global":
        raise ValueError(f"{run_dir}: not a global-model run (kind {config.get('kind')!r})")
    return net, PanelScaler.from_dict(config["scaler"]), config


def _net(panel: Panel, window: int, horizon: int, net: dict[str, Any]) -> GlobalNet:
    """The network for ``panel``, its static covariates (if any) stored in it."""
    static = 0 if panel.static is None else panel.static.shape[1]
    model = GlobalNet(GlobalConfig(window=window, horizon=horizon, series=len(panel),
                                   static=static, **net))  # fmt: skip
    if panel.static is not None and static:
        model.set_static(standardise_static(panel.static)[0])
    return model


def _identity(panel: Panel, window: int, horizon: int, model: GlobalNet, **more: Any) -> dict:
    """What a resume must match: the series (by a hash of their ids), W, H, the network."""
    ids = hashlib.sha256("\n".join(panel.ids).encode()).hexdigest()
    return {"series": len(panel), "ids_sha256": ids, "window": window, "horizon": horizon,
            "net": model.config.to_dict(), **more}  # fmt: skip


def _static_config(panel: Panel) -> dict[str, Any]:
    if panel.static is None:
        return {}
    _, mean, std = standardise_static(panel.static)
    return {"static": {"names": list(panel.static_names), "mean": mean.tolist(),
                       "std": std.tolist()}}  # fmt: skip


def _interrupted(history: dict[str, Any]) -> dict[str, Any]:
    return {"interrupted": True, "training": history}


def run_ltsf(
    panel: Panel,
    run_dir: str | os.PathLike,
    window: int,
    horizon: int,
    split: str,
    net: dict[str, Any] | None = None,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] | None = None,
    *,
    resume: bool = False,
    spec: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and score under the ltsf protocol; write the run folder; return the metrics
    (``{"interrupted": True, ...}`` when a signal stopped training)."""
    data = ltsf_data(panel, window, horizon, split)
    torch.manual_seed(options.seed)
    model = _net(panel, window, horizon, net or {})
    run_dir = Path(run_dir)
    identity = _identity(panel, window, horizon, model, protocol="ltsf", split=split)
    history = fit(model, data.train, data.val, options, log, run_dir=run_dir, resume=resume,
                  spec={"global": identity, "run": spec}, reporter=reporter)  # fmt: skip
    saved = {"ids": list(panel.ids), "scaler": data.scaler.to_dict(), "protocol": "ltsf",
             "split": split, "window": window, "horizon": horizon, **_static_config(panel),
             **(extra or {})}  # fmt: skip
    if history["stopped"] == "interrupted":
        _save(run_dir, model, saved, None)
        return _interrupted(history)
    if not distributed.ranks().is_main:
        return {"training": history}
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
    _save(run_dir, model, saved, metrics)
    return metrics


def _origin_rows(windows: PanelWindows) -> np.ndarray:
    """Flat row number of every window's origin, in window order, shape ``(n,)``."""
    i, o = windows.locate(np.arange(len(windows)))
    return windows.offsets[i] + o


def residual_quantiles(
    net: GlobalNet, windows: PanelWindows, levels: tuple[float, ...]
) -> np.ndarray:
    """Quantiles of the standardised residuals ``y - y_hat`` per horizon step over
    ``windows``, shape ``(H, Q)``: added to a point forecast, they give its interval."""
    pred, truth, _ = predict(net, windows)
    return np.quantile(truth - pred, levels, axis=0).T


def run_global(
    panel: Panel,
    run_dir: str | os.PathLike | None,
    window: int,
    horizon: int,
    season: int | None = None,
    net: dict[str, Any] | None = None,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] | None = None,
    val_horizons: int = 1,
    scaling: str = "standard",
    deseasonalise: bool = False,
    *,
    baselines: tuple[str, ...] = GLOBAL_BASELINES,
    budget_s: float | None = BUDGET_S,
    quantiles: tuple[float, ...] | None = None,
    resume: bool = False,
    spec: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    extra: dict[str, Any] | None = None,
    plots: bool = True,
    anchor: str | None = None,
    blend: str | None = None,
) -> dict[str, Any]:
    """Train one model on every series' training part, forecast each series' last ``H``
    points, score per series beside ``baselines`` (:func:`score_panel`, sharing
    ``budget_s`` seconds); write the run folder (``run_dir`` None: nothing written).

    ``val_horizons`` horizons before the test part validate (0: none; the best epoch is
    then the one of the lowest training loss). Series shorter than
    ``window + (2 + val_horizons) * horizon`` (one training window, validation and test)
    are skipped and named in ``metrics["skipped"]``. ``scaling`` is the per-series
    scaler's kind (:meth:`PanelScaler.fit`: ``"standard"`` or ``"mean"``);
    ``deseasonalise`` divides each series by its multiplicative seasonal index
    (:class:`~lstmlens.tasks.global_season.SeasonalIndex`, fitted on its training rows,
    as Theta does) before scaling and multiplies the forecasts back. ``anchor`` (a key of
    :data:`~lstmlens.tasks.global_anchor.ANCHORS`: ``"theta"``, ``"ets"``, ``"ets_theta"``)
    makes the network correct that statistical forecast, fitted per series on its
    training rows only (:mod:`~lstmlens.tasks.global_anchor`); ``blend`` (a key of the
    same) averages the network's forecasts with that model's, fitted the same way
    (:func:`~lstmlens.tasks.global_anchor.blend`). ``quantiles``: levels whose
    validation-residual quantiles are stored for ``predict`` intervals. ``spec`` (the
    caller's options, JSON) and the run's own identity must match on ``resume``;
    ``extra`` goes into ``config.json`` (e.g. the data spec ``forecast predict`` rereads).
    """
    say = (reporter.message if reporter is not None else log) or (lambda _: None)
    check_kind("run_global: anchor", anchor)
    check_kind("run_global: blend", blend)
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
    anchors = None
    if anchor:
        anchors, failed = panel_anchor(panel, split.train_end, horizon, season, anchor, scaler,
                                       seasonal, first=window, every=horizon)  # fmt: skip
        if failed:
            say(f"{anchor} anchor failed on {len(failed)} series (their last value instead): "
                f"{', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''}")  # fmt: skip

    def part(name: str, stride: int = 1) -> PanelWindows:
        start, stop = split.part(name)
        if anchors is None:
            return PanelWindows(z, panel.offsets, start, stop, window, horizon, stride)
        return AnchoredWindows(anchors, z, panel.offsets, start, stop, window, horizon, stride)

    torch.manual_seed(options.seed)
    model = _net(panel, window, horizon, {**(net or {}), "anchored": bool(anchor)})
    identity = _identity(panel, window, horizon, model, protocol="last",
                         val_horizons=val_horizons, scaling=scaling,
                         deseasonalise=seasonal is not None)  # fmt: skip
    val = part("val") if val_horizons else None
    history = fit(model, part("train"), val, options, log, run_dir=run_dir, resume=resume,
                  spec={"global": identity, "run": spec}, reporter=reporter)  # fmt: skip
    saved: dict[str, Any] = {"ids": list(panel.ids), "scaler": scaler.to_dict(),
                             "protocol": "last", "window": window, "horizon": horizon,
                             "season": season, "options": asdict(options), "anchor": anchor, "blend": blend,
                             "season_index": None if seasonal is None else seasonal.to_dict(),
                             **_static_config(panel), **(extra or {})}  # fmt: skip
    if quantiles:
        spread = residual_quantiles(model, val if val is not None else part("train", horizon),
                                    quantiles)  # fmt: skip
        saved["intervals"] = {"levels": list(quantiles), "residuals": spread.tolist()}
    if history["stopped"] == "interrupted":
        if run_dir is not None:
            _save(Path(run_dir), model, saved, None)
        return _interrupted(history)
    if not distributed.ranks().is_main:
        return {"training": history}
    test = part("test", stride=horizon)
    pred_z, _, which = predict(model, test)
    forecasts = np.empty((len(panel), horizon))
    forecasts[which] = scaler.inverse(pred_z, which)  # (N, H) original scale
    if seasonal is not None:
        forecasts[which] *= seasonal.factors(which, split.val_end[which], horizon)
    if blend:
        forecasts[which] = combine(forecasts[which], panel, which, split.train_end[which],
                                   split.val_end[which], season, blend)  # fmt: skip
    scored = score_panel(panel, split.val_end, forecasts, horizon, season, baselines, budget_s,
                         say)  # fmt: skip
    metrics = {
        "protocol": "last",
        "window": window,
        "horizon": horizon,
        "season": season,
        "series": len(panel),
        "skipped": list(skipped),
        **scored,
        "training": history,
    }
    if run_dir is not None:
        _save(Path(run_dir), model, saved, metrics)
        if plots:
            from .global_plots import save_global_plots

            save_global_plots(Path(run_dir), panel, split.val_end, forecasts, metrics)
    return metrics
