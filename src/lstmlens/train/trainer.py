"""The training engine: epochs, validation, schedules, early stopping, checkpoints, resume.

A *task* is any object with

* ``train_batches(epoch, generator) -> Iterable[batch]``: the epoch's batches;
  any shuffling draws from ``generator`` (a CPU ``torch.Generator`` owned and
  checkpointed by the trainer), so that a run repeats and resumes exactly; a
  batch may be a :class:`~lstmlens.train.distributed.Rows` (row numbers and how
  to build them), so that each process builds only its own rows;
* ``training_loss(model, batch) -> Tensor``: a scalar to minimise;
* ``validate(model) -> dict[str, float]`` with at least ``"val_loss"``; called
  under ``torch.no_grad()`` with the model in eval mode;
* optionally ``on_epoch_start(epoch)`` (e.g. reset a hidden state carried
  across batches for truncated BPTT);
* optionally ``batch_rows() -> int``: the rows of a full batch, checked against
  the number of processes before anything is written;
* optionally ``loss_weight(batch) -> float``: how many terms ``training_loss``
  averages over (e.g. the known targets, or the summed class weights); used
  to weight each rank's share when distributed (default: the batch's rows).
* optionally ``validate_share(model, ranks) -> dict[str, float]``: ``validate``
  when distributed, each rank scoring its share of the validation data and the
  task reducing the totals over ``ranks`` (:func:`~lstmlens.train.distributed.reduce_sum`),
  so that every rank returns the whole set's metrics (without it, every rank
  validates on all of it).

Epochs count from 1, in the task hooks as in the history. One epoch is::

    model.train(); for batch: zero grads, loss.backward(), clip ||g||_2 <= clip_norm, step
    model.eval();  metrics = validate(model)
    schedule step (plateau: on val_loss; cosine: epoch e runs at lr/2 (1 + cos(pi (e-1) / epochs)))
    best weights kept in memory if val_loss < best_val_loss (early stopping counts the others)
    run_dir's checkpoint pair, then run_dir/metrics.jsonl, written atomically

A task may also say when to stop: an optional ``stop_reason() -> str | None`` is asked
after every epoch (rank 0's answer holds for every rank); a string ends the run with
that reason (e.g. the task's own time budget on another clock).

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

import contextlib
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

from ..precision import check_precision
from . import distributed
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
        process_group: train with the ranks of this ``torch.distributed`` group
            (None: the default group if one exists, else one joined from the
            ``torchrun`` environment if set, else a single process).

    Distributed (world size N > 1): ``training_loss`` gets the model inside
    ``DistributedDataParallel`` (:class:`~lstmlens.train.distributed.DistributedModel`:
    calling it or a ``forward*`` method goes through DDP); every rank draws the same batches from the
    same seeded generator and trains on its share of each (rows split by
    ``torch.tensor_split``), its mean loss weighted by ``N n_r / n`` (``n_r``, ``n``:
    the task's ``loss_weight`` of the share and of the batch, else their rows), so that the
    averaged gradient is the gradient of the whole batch's mean loss: N
    processes equal one process at the same (global) batch size. Validation
    metrics are averaged over the ranks, so early stopping and the schedule
    decide the same on every rank; rank 0 alone writes the run folder and
    reports; the checkpoint holds every rank's RNG state.

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
        process_group: Any = None,
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
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise ValueError("Trainer: the model has no trainable parameters")
        self._device = self._params[0].device
        if process_group is None:  # (gloo for a CPU model, nccl for a CUDA one)
            self.ranks = distributed.init_from_environment(device=self._device)
        else:
            self.ranks = distributed.ranks(process_group)
        main = self.ranks.is_main
        self.reporter = NullReporter() if reporter is None or not main else reporter
        self.spec = None if spec is None else dict(spec)
        self._saved_epoch: int | None = None  # epoch of the last checkpoint this trainer wrote
        check_precision(self.config.precision, self._device, "Trainer: precision 'bf16'")
        self._train_model = self._wrap(model)
        self._first_share = True

    def _wrap(self, model: nn.Module) -> Any:
        """What ``training_loss`` gets: the model, inside DDP when distributed."""
        if self.ranks.world_size == 1:
            return model
        return distributed.DistributedModel(model, self.ranks)

    # ---------------------------------------------------------------- fit

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``epochs``, early stopping, ``max_minutes`` or Ctrl-C; see the module doc.

        With ``resume=True`` the run continues from ``run_dir``'s checkpoint
        exactly; the model's current weights are replaced by the checkpoint's.
        """
        self._check_rows(self._batch_rows())
        with contextlib.ExitStack() as claimed:

            def claim() -> None:  # rank 0 alone touches the folder; the others hear how it went
                if self.run_dir is not None and not resume:
                    self.run_dir.mkdir(parents=True, exist_ok=True)
                if self.run_dir is not None and self.run_dir.is_dir():  # (else resume names it)
                    claimed.enter_context(run_lock(self.run_dir))
                    clean_stray_files(self.run_dir)

            distributed.from_main(claim, self.ranks)
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
        seed_everything(cfg.seed + self.ranks.rank)  # rank 0 as a single process; others apart
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
        losses: list[float] = []  # this rank's share of each batch's mean loss
        for global_batch in batches:
            batch, weight = self._share(global_batch)
            self._optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss = task.training_loss(self._train_model, batch)
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
            (loss * weight if weight != 1 else loss).backward()
            if self.config.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self._params, self.config.clip_norm)
            self._optimizer.step()
            losses.append(value * weight)
            self.reporter.batch(value)
        if not losses:
            raise ValueError(f"Trainer: {name}.train_batches(epoch={epoch}) yielded no batches")
        self.model.eval()
        with torch.no_grad(), self._autocast():
            metrics = self._validate()
        if not isinstance(metrics, dict) or "val_loss" not in metrics:
            raise ValueError(
                f"Trainer: {name}.validate must return a dict with 'val_loss', got {metrics!r}"
            )
        train_loss = math.fsum(losses) / len(losses)
        metrics = distributed.reduce_mean({**metrics, " train_loss": train_loss}, self.ranks)
        train_loss = metrics.pop(" train_loss")
        clash = {"epoch", "train_loss", "lr", "seconds"} & set(metrics)
        if clash:
            raise ValueError(f"Trainer: {name}.validate returned reserved keys {sorted(clash)}")
        record: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
        record["val_loss"] = float(metrics["val_loss"])
        if not math.isfinite(record["val_loss"]):
            raise ValueError(f"Trainer: validation loss is {record['val_loss']} at epoch {epoch}")
        record["lr"] = lr
        record.update({k: float(v) for k, v in metrics.items() if k != "val_loss"})
        record["seconds"] = time.monotonic() - started
        return record

    def _validate(self) -> Any:
        """The task's metrics: each rank scores its share when the task can split its
        validation (``validate_share``) and there are several ranks, else all of it."""
        share = getattr(self.task, "validate_share", None)
        if self.ranks.world_size > 1 and callable(share):
            return share(self.model, self.ranks)
        return self.task.validate(self.model)

    def _share(self, batch: Any) -> tuple[Any, float]:
        """This rank's rows of ``batch`` and the weight ``N n_r / n`` of its mean loss
        (``n_r``, ``n``: the task's ``loss_weight`` of the share and the batch, else rows).

        Every tensor of the batch (a tensor, or a tuple/list of them and other
        values) whose first dimension is the batch's ``n`` rows is split by
        ``torch.tensor_split``; a rank left without rows trains on row 0 with
        weight 0 (DDP needs every rank to take part in every step). A
        :class:`~lstmlens.train.distributed.Rows` batch is built for this rank's
        rows only (whole where one process trains, or the task weighs loss terms).
        """
        world, terms = self.ranks.world_size, getattr(self.task, "loss_weight", None)
        lazy = isinstance(batch, distributed.Rows)
        if lazy and (world == 1 or callable(terms)):
            batch, lazy = batch.take(0, len(batch)), False
        if world == 1:
            return batch, 1.0
        items = () if lazy else batch if isinstance(batch, (tuple, list)) else (batch,)
        sizes = [len(batch)] if lazy else [t.shape[0] for t in items if _rows(t) is not None]
        if not sizes:
            raise TypeError(
                f"Trainer: cannot split a batch of {type(batch).__name__} across {world} processes"
            )
        n = sizes[0]
        if self._first_share:  # (the first batch is a full one)
            self._check_rows(n)
        self._first_share = False
        bounds = torch.tensor_split(torch.arange(n), world)[self.ranks.rank]
        lo, hi = (int(bounds[0]), int(bounds[-1]) + 1) if len(bounds) else (0, 1)
        if lazy:
            return batch.take(lo, hi), world * len(bounds) / n
        shared = [t[lo:hi] if _rows(t) == n else t for t in items]
        mine = type(batch)(shared) if isinstance(batch, (tuple, list)) else shared[0]
        if not callable(terms) or not len(bounds):
            return mine, world * len(bounds) / n
        total = float(terms(batch))
        return mine, world * float(terms(mine)) / total if total > 0 else 0.0

    def _batch_rows(self) -> int | None:
        rows = getattr(self.task, "batch_rows", None)
        return int(rows()) if callable(rows) else None

    def _check_rows(self, n: int | None) -> None:
        """Every process needs at least one row of a full batch."""
        world = self.ranks.world_size
        if n is not None and n < world:
            raise ValueError(
                f"Trainer: {world} processes but a batch of only {n} rows (samples or "
                f"streams): use at most {n} processes or a larger batch"
            )

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
        if self.config.max_minutes is not None:  # the clock of rank 0 decides for every rank
            elapsed = distributed.from_main(lambda: elapsed, self.ranks)
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
        asked = getattr(self.task, "stop_reason", None)
        if elapsed is not None and callable(asked):  # after an epoch: the task's own reason
            return distributed.from_main(asked, self.ranks)
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
        every_rng = distributed.gather_objects(rng_state(self._generator), self.ranks)
        if not self.ranks.is_main:  # the others only hand over their RNG states
            return
        rng_tensors, rng_doc = every_rng[0]
        for r, (more, doc) in enumerate(every_rng[1:], start=1):
            rng_tensors.update({f"rank{r}/{k}": v for k, v in more.items()})
            rng_doc.setdefault("ranks", {})[str(r)] = doc
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        if self._best_state is not None:
            tensors.update({f"best/{k}": v for k, v in self._best_state.items()})
        opt_tensors, opt_doc = optimizer_state(self._optimizer)
        state = {
            "epoch": self._epoch,
            "stopped": stopped,
            "config": dataclasses.asdict(self.config),
            "spec": self.spec,
            "world_size": self.ranks.world_size,
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
        run_dir = self.run_dir
        found = distributed.from_main(lambda: read_checkpoint(run_dir), self.ranks)
        tensors, state, source = found.tensors, found.state, found.source
        if source.name != CHECKPOINT_JSON:
            self.reporter.warning(
                f"{self.run_dir / CHECKPOINT_JSON} is missing or damaged; resuming from "
                f"{source.name} (epoch {state.get('epoch')})"
            )
        if state.get("tensors") is None:
            self.reporter.message(f"nothing trained yet in {self.run_dir}: starting afresh")
            return False
        # rank 0 decides (the other ranks of a command may name a scratch folder in their spec)
        distributed.from_main(lambda: self._check_same_run(state, source), self.ranks)
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
            rank = self.ranks.rank
            if rank == 0:
                restore_rng_state(self._generator, tensors, state["rng"])
            else:
                mine = _prefixed(tensors, f"rank{rank}/")
                restore_rng_state(self._generator, mine, state["rng"]["ranks"][str(rank)])
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
        asked = {**dataclasses.asdict(self.config), "world_size": self.ranks.world_size}
        check_resume(saved, asked, may_change, where=where, asker=asker)
        if self.spec is not None:
            check_resume(state.get("spec") or {}, self.spec, where=where, asker=asker)


def _rows(t: Any) -> int | None:
    """The rows (first dimension) of a tensor with at least one dimension, else None."""
    return t.shape[0] if isinstance(t, torch.Tensor) and t.dim() > 0 else None


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"
