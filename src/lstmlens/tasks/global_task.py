"""The global model as a :class:`~lstmlens.train.Trainer` task: windows of every series.

A batch is ``(x, y, i)``: ``x`` ``(B, W)``, ``y`` ``(B, H)`` on the per-series
standardised scale and the series numbers ``i`` ``(B,)``; the loss is the mean
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

__all__ = ["LOSSES", "GlobalTask", "predict_windows"]

#: Training losses by name, on the standardised scale.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mae": torch.nn.functional.l1_loss,
    "mse": torch.nn.functional.mse_loss,
}


def predict_windows(
    net: torch.nn.Module, windows: PanelWindows, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pred, truth, series)``: ``(n, H)``, ``(n, H)`` on the standardised scale and the
    series number of each window ``(n,)``, for every window of ``windows`` in order."""
    net.eval()
    preds, truths, which = [], [], []
    with torch.no_grad():
        for x, y, i in windows.batches(batch_size):
            preds.append(net(x, i).numpy())
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
        deadline: ``time.monotonic()`` after which an epoch ends early (one process
            only: ranks must take the same steps, so a distributed run stops at epoch
            ends, by the trainer's ``max_minutes``).
    """

    def __init__(
        self,
        train: PanelWindows,
        val: PanelWindows | None,
        batch_size: int = 256,
        loss: str = "mae",
        max_steps: int | None = None,
        deadline: float | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"GlobalTask: loss must be one of {sorted(LOSSES)}, got {loss!r}")
        if len(train) == 0:
            raise ValueError("GlobalTask: no training windows (series too short for W + H)")
        self.train, self.val = train, (val if val is not None and len(val) else None)
        self.batch_size, self.loss_fn = batch_size, LOSSES[loss]
        self.max_steps, self.deadline = max_steps, deadline
        self._losses: list[float] = []

    def on_epoch_start(self, epoch: int) -> None:
        self._losses = []

    def train_batches(
        self, epoch: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for step, batch in enumerate(self.train.batches(self.batch_size, True, generator)):
            if self.max_steps is not None and step >= self.max_steps:
                return
            if step and self.deadline is not None and time.monotonic() > self.deadline:
                return
            yield batch

    def training_loss(self, model, batch) -> torch.Tensor:
        x, y, i = batch
        loss = self.loss_fn(model(x, i), y)
        self._losses.append(float(loss.detach()))
        return loss

    def validate(self, model) -> dict[str, float]:
        if self.val is None:
            return {"val_loss": math.fsum(self._losses) / max(len(self._losses), 1)}
        pred, truth, _ = predict_windows(model, self.val)
        return {"val_loss": float(self.loss_fn(torch.from_numpy(pred), torch.from_numpy(truth)))}
