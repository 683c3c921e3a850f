"""The training engine: epochs, validation, schedules, early stopping, checkpoints, resume.

A *task* is any object with

* ``train_batches(epoch, generator) -> Iterable[batch]``: the epoch's batches;
  any shuffling draws from ``generator`` (a CPU ``torch.Generator`` owned and
  checkpointed by the trainer), so that a run repeats and resumes exactly;
* ``training_loss(model, batch) -> Tensor``: a scalar to minimise;
* ``validate(model) -> dict[str, float]`` with at least ``"val_loss"``; called
  under ``torch.no_grad()`` with the model in eval mode;
* optionally ``on_epoch_start(epoch)`` (e.g. reset a hidden state carried
  across batches for truncated BPTT).

Epochs count from 1, in the task hooks as in the history. One epoch is::

    model.train(); for batch: zero grads, loss.backward(), clip ||g||_2 <= clip_norm, step
    model.eval();  metrics = validate(model)
    schedule step (plateau: on val_loss; cosine: epoch e runs at lr/2 (1 + cos(pi (e-1) / epochs)))
    best weights kept in memory if val_loss < best_val_loss (early stopping counts the others)
    run_dir's checkpoint pair, then run_dir/metrics.jsonl, written atomically

The checkpoint (:mod:`lstmlens.train.checkpoint`: a pair that survives a kill at
any instant) holds everything the next epoch depends on (weights, best weights,
optimizer and scheduler state, early-stopping counters, history and the
torch/task/NumPy/``random`` RNG states), so that ``fit(resume=True)`` continues
bit-for-bit as if the run had never stopped. It also records what the run is:
the :class:`TrainConfig`, the caller's ``spec`` (model, data and task options)
and the world size; a resume that asks for something else is refused, naming
each field (:func:`lstmlens.train.resume.check_resume`); only ``epochs`` (not
with the cosine schedule), ``max_minutes``, ``patience`` and ``precision`` may
change. A checkpoint is also written before the first epoch, so Ctrl-C at any
moment leaves one. SIGINT and SIGTERM stop the run the same way, and one
arriving while a checkpoint is being written waits until the write is done.

While ``fit`` runs it holds the run folder's lock (:mod:`lstmlens.train.lock`):
a second process fitting into the same folder is refused. On entry it removes
the temporary files a killed run may have left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import (
    CHECKPOINT_JSON,
    METRICS_LOG,
    clean_stray_files,
    load_weights,
    naming_os_errors,
    read_checkpoint,
    save_checkpoint,
    write_atomic,
)
from .config import PLATEAU_FACTOR, PLATEAU_PATIENCE, TrainConfig, TrainResult, seed_everything
from .lock import run_lock
from .reporter import NullReporter, Reporter
from .resume import check_resume
from .signals import StopSignals
from .state import load_optimizer_state, optimizer_state, restore_rng_state, rng_state

__all__ = ["Trainer"]

# TrainConfig fields a resumed run may change (epochs not under the cosine schedule).
_MAY_CHANGE = ("epochs", "max_minutes", "patience", "precision")


def _task_seed(seed: int) -> int:
    """A seed for the task's generator, decorrelated from the global one (same ``seed``)."""
    digest = hashlib.sha256(f"lstmlens-task-{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _world_size() -> int:
    """Processes training together: ``torch.distributed``'s world size, 1 when not distributed."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class Trainer:
    """Fits ``model`` on ``task`` as ``config`` says; see the module docstring for the loop.

    Args:
        model: any ``nn.Module``; it stays on its device (batches are the task's business).
        task: an object with ``train_batches``, ``training_loss`` and ``validate``.
        config: a :class:`TrainConfig`.
        run_dir: folder for ``metrics.jsonl`` and the checkpoint (None: nothing written).
        reporter: progress output (None: :class:`NullReporter`).
        spec: what is trained, as JSON (model, data and task options); recorded in
            the checkpoint, and ``fit(resume=True)`` refuses a checkpoint whose
            spec differs in any field (None: not recorded, not checked).

    The model is not re-initialised: seed its construction yourself
    (:func:`seed_everything`) for a repeatable run.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Any,
        config: TrainConfig | None = None,
        run_dir: str | Path | None = None,
        reporter: Reporter | None = None,
        spec: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Trainer: model must be an nn.Module, got {type(model).__name__}")
        for hook in ("train_batches", "training_loss", "validate"):
            if not callable(getattr(task, hook, None)):
                raise TypeError(f"Trainer: task {type(task).__name__} has no method {hook}()")
        self.model = model
        self.task = task
        self.config = TrainConfig() if config is None else config
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.reporter = NullReporter() if reporter is None else reporter
        self.spec = None if spec is None else dict(spec)
        self._saved_epoch: int | None = None  # epoch of the last checkpoint this trainer wrote
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise ValueError("Trainer: the model has no trainable parameters")
        self._device = self._params[0].device

    # ---------------------------------------------------------------- fit

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``epochs``, early stopping, ``max_minutes`` or Ctrl-C; see the module doc.

        With ``resume=True`` the run continues from ``run_dir``'s checkpoint
        exactly; the model's current weights are replaced by the checkpoint's.
        """
        if self.run_dir is not None and not resume:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.run_dir is None or not self.run_dir.is_dir():  # (a resume then fails, naming it)
            return self._fit(resume)
        with run_lock(self.run_dir):
            clean_stray_files(self.run_dir)
            return self._fit(resume)

    def _fit(self, resume: bool) -> TrainResult:
        started = time.monotonic()
        self._setup()
        restored = resume and self._restore()
        stops = StopSignals()
        try:
            with stops:
                if not restored and self.run_dir is not None:
                    with stops.held():
                        self._write_run_files(stopped=None)
                stopped = self._stop_reason(elapsed=None)
                while stopped is None:
                    record = self._run_epoch(self._epoch + 1)
                    with stops.held():
                        stopped = self._commit(record, time.monotonic() - started)
        except KeyboardInterrupt:
            stopped = "interrupted"
            by = f" by {stops.received}" if stops.received else ""
            where = f"; checkpoint of epoch {self._epoch} in {self.run_dir}" if self.run_dir else ""
            self.reporter.warning(f"interrupted{by}{where}")
        finally:
            self.reporter.close()
            self._hold_best()
        if stopped == "early_stopping":
            self.reporter.message(
                f"early stopping: no lower val_loss for {self._bad_epochs} epochs"
            )
        elif stopped == "max_minutes":
            self.reporter.message(f"stopped after {self.config.max_minutes:g} minutes")
        return TrainResult(
            history=[dict(r) for r in self._history],
            best_epoch=self._best_epoch,
            best_val_loss=self._best_val_loss,
            stopped=stopped,
            seconds=time.monotonic() - started,
            checkpoint=self.run_dir,
        )

    def _setup(self) -> None:
        """Fresh optimizer, scheduler, counters and seeded RNGs (a resume then overwrites them)."""
        cfg = self.config
        seed_everything(cfg.seed)
        self._generator = torch.Generator().manual_seed(_task_seed(cfg.seed))
        self._optimizer = self._make_optimizer()
        self._scheduler = self._make_scheduler()
        self._epoch = 0
        self._history: list[dict[str, Any]] = []
        self._best_state: dict[str, torch.Tensor] | None = None
        self._best_epoch = 0
        self._best_val_loss = math.inf
        self._bad_epochs = 0
        self._start_state = self._snapshot()  # what the model holds if no epoch completes

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg, params = self.config, self._params
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        return torch.optim.RMSprop(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )

    def _make_scheduler(self) -> Any:
        cfg = self.config
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self._optimizer, mode="min", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE
            )
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self._optimizer, T_max=cfg.epochs)
        return None

    # -------------------------------------------------------------- epoch

    def _autocast(self) -> Any:
        bf16 = self.config.precision == "bf16"
        return torch.autocast(device_type=self._device.type, dtype=torch.bfloat16, enabled=bf16)

    def _run_epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch, then validate; returns the epoch's record (nothing committed yet)."""
        task, name = self.task, type(self.task).__name__
        started = time.monotonic()
        lr = float(self._optimizer.param_groups[0]["lr"])
        if callable(getattr(task, "on_epoch_start", None)):
            task.on_epoch_start(epoch)
        self.model.train()
        batches = task.train_batches(epoch, self._generator)
        total = len(batches) if hasattr(batches, "__len__") else None
        self.reporter.epoch_start(epoch, self.config.epochs, total)
        losses: list[float] = []
        for batch in batches:
            self._optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss = task.training_loss(self.model, batch)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
                raise TypeError(
                    f"Trainer: {name}.training_loss must return a scalar tensor, got {got}"
                )
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ValueError(
                    f"Trainer: training loss is {value} at epoch {epoch}, batch {len(losses) + 1}; "
                    "try a lower learning rate or gradient clipping"
                )
            loss.backward()
            if self.config.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self._params, self.config.clip_norm)
            self._optimizer.step()
            losses.append(value)
            self.reporter.batch(value)
        if not losses:
            raise ValueError(f"Trainer: {name}.train_batches(epoch={epoch}) yielded no batches")
        self.model.eval()
        with torch.no_grad(), self._autocast():
            metrics = task.validate(self.model)
        if not isinstance(metrics, dict) or "val_loss" not in metrics:
            raise ValueError(
                f"Trainer: {name}.validate must return a dict with 'val_loss', got {metrics!r}"
            )
        clash = {"epoch", "train_loss", "lr", "seconds"} & set(metrics)
        if clash:
            raise ValueError(f"Trainer: {name}.validate returned reserved keys {sorted(clash)}")
        record: dict[str, Any] = {"epoch": epoch, "train_loss": math.fsum(losses) / len(losses)}
        record["val_loss"] = float(metrics["val_loss"])
        if not math.isfinite(record["val_loss"]):
            raise ValueError(f"Trainer: validation loss is {record['val_loss']} at epoch {epoch}")
        record["lr"] = lr
        record.update({k: float(v) for k, v in metrics.items() if k != "val_loss"})
        record["seconds"] = time.monotonic() - started
        return record

    def _commit(self, record: dict[str, Any], elapsed: float) -> str | None:
        """Make a validated epoch part of the run: schedule, early stopping, files, report."""
        val_loss = record["val_loss"]
        self._history.append(record)
        self._epoch = record["epoch"]
        if isinstance(self._scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self._scheduler.step(val_loss)
        elif self._scheduler is not None:
            self._scheduler.step()
        if val_loss < self._best_val_loss:
            self._best_val_loss, self._best_epoch, self._bad_epochs = val_loss, self._epoch, 0
            self._best_state = self._snapshot()
        else:
            self._bad_epochs += 1
        stopped = self._stop_reason(elapsed)
        if self.run_dir is not None:
            self._write_run_files(stopped)
        self.reporter.epoch_end(record)
        return stopped

    def _stop_reason(self, elapsed: float | None) -> str | None:
        cfg = self.config
        if cfg.patience is not None and self._bad_epochs >= cfg.patience:
            return "early_stopping"
        if self._epoch >= cfg.epochs:
            return "completed"
        if elapsed is not None and cfg.max_minutes is not None and elapsed >= 60 * cfg.max_minutes:
            return "max_minutes"
        return None

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _hold_best(self) -> None:
        """Leave the model with the best weights (the initial ones if no epoch completed)."""
        state = self._best_state if self._best_state is not None else self._start_state
        self.model.load_state_dict(state)

    # --------------------------------------------------------- checkpoint

    def _write_run_files(self, stopped: str | None) -> None:
        """The checkpoint pair, then ``metrics.jsonl``; a failed write is an ``OSError`` naming
        the file and saying which checkpoint is still there."""
        assert self.run_dir is not None
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        if self._best_state is not None:
            tensors.update({f"best/{k}": v for k, v in self._best_state.items()})
        opt_tensors, opt_doc = optimizer_state(self._optimizer)
        rng_tensors, rng_doc = rng_state(self._generator)
        state = {
            "epoch": self._epoch,
            "stopped": stopped,
            "config": dataclasses.asdict(self.config),
            "spec": self.spec,
            "world_size": _world_size(),
            "history": self._history,
            "early_stopping": {
                "best_epoch": self._best_epoch,
                "best_val_loss": self._best_val_loss,
                "bad_epochs": self._bad_epochs,
            },
            "optimizer": opt_doc,
            "scheduler": None if self._scheduler is None else self._scheduler.state_dict(),
            "rng": rng_doc,
        }
        lines = "".join(_json_line(r) for r in self._history)
        metrics = self.run_dir / METRICS_LOG
        try:
            save_checkpoint(self.run_dir, {**tensors, **opt_tensors, **rng_tensors}, state)
            self._saved_epoch = self._epoch
            with naming_os_errors(metrics):
                write_atomic(metrics, lambda tmp: Path(tmp).write_text(lines, encoding="utf-8"))
        except OSError as e:
            kept = self._saved_epoch
            note = (
                "no checkpoint written yet"
                if kept is None
                else f"the checkpoint of epoch {kept} is kept"
            )
            raise OSError(e.errno, f"{e.strerror} ({note})", e.filename) from None

    def _restore(self) -> bool:
        """Load ``run_dir``'s checkpoint into model, optimizer, scheduler, counters and RNGs.

        Returns False (and loads nothing) when the checkpoint is the mark of a run
        that has trained nothing yet; the run then starts afresh.
        """
        if self.run_dir is None:
            raise ValueError("Trainer.fit(resume=True): no run_dir to resume from")
        found = read_checkpoint(self.run_dir)
        tensors, state, source = found.tensors, found.state, found.source
        if source.name != CHECKPOINT_JSON:
            self.reporter.warning(
                f"{self.run_dir / CHECKPOINT_JSON} is missing or damaged; resuming from "
                f"{source.name} (epoch {state.get('epoch')})"
            )
        if state.get("tensors") is None:
            self.reporter.message(f"nothing trained yet in {self.run_dir}: starting afresh")
            return False
        self._check_same_run(state, source)
        try:
            load_weights(self.model, _prefixed(tensors, "model/"), self.run_dir / state["tensors"])
            best = _prefixed(tensors, "best/")
            self._best_state = {k: v.to(self._device) for k, v in best.items()} or None
            load_optimizer_state(self._optimizer, tensors, state["optimizer"])
            if self._scheduler is not None:
                self._scheduler.load_state_dict(state["scheduler"])
            stop = state["early_stopping"]
            self._best_epoch, self._bad_epochs = stop["best_epoch"], stop["bad_epochs"]
            self._best_val_loss = float(stop["best_val_loss"])
            self._history = list(state["history"])
            self._epoch = int(state["epoch"])
            restore_rng_state(self._generator, tensors, state["rng"])
        except (KeyError, TypeError, IndexError, RuntimeError) as e:
            raise ValueError(f"{source}: incomplete or inconsistent checkpoint ({e!r})") from None
        self._saved_epoch = self._epoch
        self._start_state = self._snapshot()
        self.reporter.message(f"resuming {self.run_dir} after epoch {self._epoch}")
        return True

    def _check_same_run(self, state: dict[str, Any], source: Path) -> None:
        """Refuse a checkpoint made with another TrainConfig, spec or world size (naming fields)."""
        where, asker = f"Trainer.fit(resume=True): {source}", "this run"
        may_change = set(_MAY_CHANGE) - ({"epochs"} if self.config.schedule == "cosine" else set())
        saved = {**(state.get("config") or {}), "world_size": state.get("world_size")}
        asked = {**dataclasses.asdict(self.config), "world_size": _world_size()}
        check_resume(saved, asked, may_change, where=where, asker=asker)
        if self.spec is not None:
            check_resume(state.get("spec") or {}, self.spec, where=where, asker=asker)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"
