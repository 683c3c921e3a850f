"""The global model as a :class:`~lstmlens.train.Trainer` task: windows of every series.

A batch is ``(x, y, i)``: ``x`` ``(B, W)``, ``y`` ``(B, H)`` on the per-series
standardised scale and the series numbers ``i`` ``(B,)`` (``(x, y, i, a)`` with the
anchors ``a`` ``(B, H)`` of :class:`~lstmlens.tasks.global_anchor.AnchoredWindows`); the loss is the mean
absolute (or squared) error over the ``B x H`` targets. The training windows are
shuffled with the trainer's generator, so a run repeats, resumes and splits across
processes exactly (each rank takes its rows of every batch,
:class:`~lstmlens.train.Trainer`).

Without validation windows (``val=None``) the epoch's mean training loss stands in
for ``val_loss`` (the best epoch is the one of the lowest training loss).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..data.panel_windows import PanelWindows
from ..train.distributed import Rows

__all__ = ["CLOCKS", "LOSSES", "GlobalTask", "predict_windows", "smape_loss", "takes_series"]


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

#: Clocks for a time budget: wall time, or CPU time of this process (a budget that
#: does not shrink when other processes share the cores; with one thread it is the wall
#: time of an idle machine).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.monotonic, "cpu": time.process_time}


def takes_series(net: torch.nn.Module) -> bool:
    """Whether ``net`` is called with the series numbers: a
    :class:`~lstmlens.tasks.global_net.GlobalNet`, or a plain segment network with
    channel embeddings."""
    from .global_net import GlobalNet

    return isinstance(net, GlobalNet) or bool(getattr(getattr(net, "config", None), "channels", 0))


def _anchor(rest: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword argument for a batch's anchor, if it has one."""
    return {"anchor": rest[0]} if rest else {}


def predict_windows(
    net: torch.nn.Module, windows: PanelWindows, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pred, truth, series)``: ``(n, H)``, ``(n, H)`` on the standardised scale and the
    series number of each window ``(n,)``, for every window of ``windows`` in order."""
    net.eval()
    preds, truths, which = [], [], []
    series = takes_series(net)
    anchor: list[torch.Tensor]  # one tensor from AnchoredWindows, else none
    with torch.no_grad():
        for x, y, i, *anchor in windows.batches(batch_size):
            preds.append(net(x, i if series else None, **_anchor(anchor)).numpy())
            truths.append(y.numpy())
            which.append(i.numpy())
    h = windows.horizon
    cat = lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape)
    return cat(preds, (0, h)), cat(truths, (0, h)), cat(which, (0,)).astype(np.int64)


class GlobalTask:
    """Train on ``train``'s windows, validate on ``val``'s (see the module docstring).

    Args:
        train, val: the windows (``val`` None: no validation).
        batch_size: windows per step (the global batch under ``--nproc``).
        loss: a key of :data:`LOSSES`.
        max_steps: cap on the steps of one epoch (None: every window once).
        budget_s: seconds of ``clock`` (a key of :data:`CLOCKS`) from the first epoch
            on; once spent, the run stops after the epoch (:meth:`stop_reason`), and on
            one process the epoch itself ends early (ranks must take the same steps, so
            a distributed run stops at epoch ends only). A run cut by time does not
            repeat exactly.
        cut_epochs: whether a spent budget may end an epoch early.
        series: whether the model is called with the series numbers (:func:`takes_series`).

    With an ensemble the model returns ``(K, B, H)`` in training: each member is scored
    against the same targets.
    """

    def __init__(
        self,
        train: PanelWindows,
        val: PanelWindows | None,
        batch_size: int = 256,
        loss: str = "mae",
        max_steps: int | None = None,
        budget_s: float | None = None,
        clock: str = "wall",
        cut_epochs: bool = True,
        series: bool = True,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"GlobalTask: loss must be one of {sorted(LOSSES)}, got {loss!r}")
        if clock not in CLOCKS:
            raise ValueError(f"GlobalTask: clock must be one of {sorted(CLOCKS)}, got {clock!r}")
        if len(train) == 0:
            raise ValueError("GlobalTask: no training windows (series too short for W + H)")
        self.train, self.val = train, (val if val is not None and len(val) else None)
        self.batch_size, self.loss_fn = batch_size, LOSSES[loss]
        self.max_steps, self.budget_s, self.cut_epochs = max_steps, budget_s, cut_epochs
        self.clock, self.series = CLOCKS[clock], series
        self._deadline: float | None = None
        self._losses: list[float] = []

    def _out_of_time(self) -> bool:
        return self._deadline is not None and self.clock() > self._deadline

    def on_epoch_start(self, epoch: int) -> None:
        self._losses = []
        if self._deadline is None and self.budget_s is not None:
            self._deadline = self.clock() + self.budget_s

    def stop_reason(self) -> str | None:
        """``"time"`` once the budget is spent (asked by the trainer after an epoch)."""
        return "time" if self._out_of_time() else None

    def batch_rows(self) -> int:
        """Windows of a full batch (a distributed run needs at least one per process)."""
        return min(self.batch_size, len(self.train))

    def train_batches(self, epoch: int, generator: torch.Generator) -> Iterator[Rows]:
        """Every training window once, shuffled (the order of ``PanelWindows.batches``), as
        :class:`~lstmlens.train.distributed.Rows`: each process gathers only its windows."""
        order = torch.randperm(len(self.train), generator=generator).numpy()
        for step, lo in enumerate(range(0, len(order), self.batch_size)):
            if self.max_steps is not None and step >= self.max_steps:
                return
            if step and self.cut_epochs and self._out_of_time():
                return
            yield Rows(order[lo : lo + self.batch_size], self.train.gather)

    def training_loss(self, model, batch) -> torch.Tensor:
        x, y, i, *anchor = batch  # (an anchor (B, H) from AnchoredWindows)
        out = model(x, i if self.series else None, **_anchor(anchor))  # (B, H) or (K, B, H)
        loss = self.loss_fn(out, y.expand_as(out))
        self._losses.append(float(loss.detach()))
        return loss

    def validate(self, model) -> dict[str, float]:
        if self.val is None:
            return {"val_loss": math.fsum(self._losses) / max(len(self._losses), 1)}
        pred, truth, _ = predict_windows(model, self.val)
        return {"val_loss": float(self.loss_fn(torch.from_numpy(pred), torch.from_numpy(truth)))}
