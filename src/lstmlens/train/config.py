"""What a training run is told (:class:`TrainConfig`) and what it returns (:class:`TrainResult`)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "OPTIMIZERS",
    "PLATEAU_FACTOR",
    "PLATEAU_PATIENCE",
    "PRECISIONS",
    "SCHEDULES",
    "TrainConfig",
    "TrainResult",
    "seed_everything",
]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = (None, "plateau", "cosine")
PRECISIONS = ("fp32", "bf16")
PLATEAU_FACTOR = 0.5  # reduce-on-plateau: lr <- lr * 0.5 ...
PLATEAU_PATIENCE = 2  # ... after 2 epochs without a lower val_loss


@dataclass
class TrainConfig:
    """How to train. Every field has a default that suits a small LSTM."""

    epochs: int = 20  # passes over the training batches (a resumed run continues up to this)
    max_minutes: float | None = None  # stop at the first epoch end after this many minutes
    optimizer: str = "adam"  # adam | adamw | sgd | rmsprop
    lr: float = 1e-3  # initial learning rate
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    momentum: float = 0.9  # momentum of sgd and rmsprop (unused by adam/adamw)
    schedule: str | None = None  # None | "plateau" (halve lr after 2 flat epochs) | "cosine"
    clip_norm: float | None = 1.0  # clip the global gradient norm to this (None: no clipping)
    patience: int | None = None  # early stopping: epochs without a lower val_loss (None: off)
    seed: int = 0  # seeds torch, NumPy, random and the task's generator
    precision: str = "fp32"  # fp32 | bf16 (forward passes under bfloat16 autocast)

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            got = getattr(self, name)
            return ValueError(f"TrainConfig: {name} must be {expected}, got {got!r}")

        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise bad("epochs", "an integer >= 1")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise bad("max_minutes", "None or > 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise bad("lr", "a finite number > 0")
        if not self.weight_decay >= 0:
            raise bad("weight_decay", ">= 0")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", "in [0, 1)")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", "None, 'plateau' or 'cosine'")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise bad("clip_norm", "None or > 0")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise bad("patience", "None or an integer >= 1")
        if not isinstance(self.seed, int):
            raise bad("seed", "an integer")
        if self.precision not in PRECISIONS:
            raise bad("precision", "'fp32' or 'bf16'")


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns; the model then holds the weights of ``best_epoch``."""

    history: list[dict[str, Any]]  # one record per epoch: epoch, train_loss, val_loss, lr, ...
    best_epoch: int  # epoch (from 1) with the lowest val_loss; 0 if none completed
    best_val_loss: float  # its val_loss (inf if none)
    stopped: str  # "completed" | "early_stopping" | "max_minutes" | "interrupted"
    seconds: float = 0.0  # wall time of this fit() call
    checkpoint: Path | None = field(default=None)  # run folder holding the checkpoint, if any


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global generator and ``random`` with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global RNG, on purpose)
    random.seed(seed)
