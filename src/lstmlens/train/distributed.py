"""Many processes, one model: ``torch.distributed`` set-up and the collectives the trainer needs.

lstmlens runs on PyTorch's own engine: a process group (gloo for a model on the
CPU, nccl for one on CUDA) joined from the ``torchrun`` environment, gradients
averaged by ``DistributedDataParallel``, and N local workers started by torch's
elastic launcher (:mod:`lstmlens.train.launcher`, re-exported here as
:func:`launch` and :class:`WorkerFailedError`). Nothing here forks by hand.

* :func:`environment` reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR`` and ``MASTER_PORT``: all set (a worker of ``torchrun`` or of
  :func:`launch`), none set (one ordinary process), or a one-line ``ValueError``
  naming the missing ones.
* :func:`init_from_environment` joins the process group with a timeout on every
  collective, so that a dead peer ends a run with an error, never a hang.
* :class:`Ranks` says who this process is; :func:`reduce_mean`, :func:`reduce_sum`,
  :func:`gather_objects` and :func:`from_main` are the few collectives the
  trainer and the tasks need (validation metrics, every rank's RNG state, rank 0's
  checkpoint), each once per epoch at most; a training step's only collective is
  DDP's gradient allreduce.
* :func:`note_local_peers` and :func:`wait_for_dead_peers`: a rank that fails
  because a peer on its machine died (gloo: "connection closed by peer") waits
  until the launcher has seen that death, so that the launcher names the dead
  rank, not the survivor's follow-on error; :func:`wait_for_main` lets rank 0
  fail first on bad input (its one line is the one the user sees).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENV_VARS",
    "DistributedModel",
    "Ranks",
    "Rows",
    "backend_for",
    "check_share",
    "environment",
    "from_main",
    "gather_objects",
    "init_from_environment",
    "note_local_peers",
    "ranks",
    "reduce_mean",
    "reduce_sum",
    "wait_for_dead_peers",
    "wait_for_main",
]

#: What ``torchrun`` (and :func:`launch`) tell each worker.
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: Seconds any collective may wait for the other ranks before the run fails.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Ranks:
    """Who this process is among those training together (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: Any = None  # the torch.distributed process group (None: the default one)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_available() and dist.is_initialized()


def environment(env: Mapping[str, str] | None = None) -> dict[str, str | int] | None:
    """The ``torchrun`` variables as ``{name: value}``, or None when none is set.

    Raises ``ValueError`` (one line, naming the missing or bad variables) when
    the environment is half set.
    """
    env = os.environ if env is None else env
    present = [v for v in ENV_VARS if env.get(v)]
    if not present:
        return None
    missing = [v for v in ENV_VARS if v not in present]
    if missing:
        raise ValueError(
            f"torch.distributed environment is half set: {', '.join(present)} set but "
            f"{', '.join(missing)} missing"
        )
    out: dict[str, str | int] = {"MASTER_ADDR": env["MASTER_ADDR"]}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        try:
            out[name] = int(env[name])
        except ValueError:
            raise ValueError(
                f"torch.distributed environment: {name}={env[name]!r} is not an integer"
            ) from None
    if not 0 <= int(out["RANK"]) < int(out["WORLD_SIZE"]):
        raise ValueError(
            f"torch.distributed environment: RANK={out['RANK']} is not in [0, WORLD_SIZE={out['WORLD_SIZE']})"
        )
    return out


def backend_for(device: torch.device | str = "cpu") -> str:
    """``nccl`` for a model on a CUDA device, ``gloo`` for one on the CPU.

    The model's device decides, not the machine: a CPU model on a machine with
    CUDA trains over gloo (nccl reduces CUDA tensors only).
    """
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def ranks(group: Any = None) -> Ranks:
    """This process's :class:`Ranks` in ``group`` (the default group); rank 0 of 1 if none."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank(group)))
    return Ranks(dist.get_rank(group), dist.get_world_size(group), local, group)


def check_share(count: int, what: str, world: int | None = None) -> None:
    """Refuse more processes than ``count`` ``what`` (series, streams, samples): every rank
    needs at least one. ``world``: the number of processes (default: this group's size).

    Call it once the data is read and before anything is written, so that bad input
    leaves no run folder behind. Raises ``ValueError`` naming both counts.
    """
    world = ranks().world_size if world is None else world
    if count < world:
        raise ValueError(
            f"{world} processes but only {count} {what}: every process needs at least one; "
            + (
                f"use at most {count} process{'es' if count > 1 else ''} (--nproc {count})"
                if count
                else "there is nothing to share"
            )
        )


def init_from_environment(
    timeout: float = DEFAULT_TIMEOUT,
    backend: str | None = None,
    device: torch.device | str = "cpu",
) -> Ranks:
    """Join the default process group from the ``torchrun`` environment; returns :class:`Ranks`.

    The backend is ``backend``, else :func:`backend_for` the ``device`` the model
    trains on. Does nothing (and returns rank 0 of 1) when no variable is set,
    and returns the current ranks when the group already exists. Every
    collective of the group then fails after ``timeout`` seconds instead of
    waiting for ever. A port in use or an unreachable rendezvous is a one-line
    ``ValueError``.
    """
    env = environment()
    if dist.is_available() and dist.is_initialized():
        return ranks()
    if env is None:
        return Ranks()
    backend = backend or backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(int(env["LOCAL_RANK"]))
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    except dist.DistNetworkError as e:  # rank 0 hosts the store on MASTER_ADDR:MASTER_PORT
        where = f"MASTER_ADDR={env['MASTER_ADDR']} MASTER_PORT={env['MASTER_PORT']}"
        if "EADDRINUSE" in str(e):
            raise ValueError(f"torch.distributed: port in use ({where}); pick a free one") from None
        first = " ".join(str(e).split())
        raise ValueError(f"torch.distributed: cannot join the group at {where}: {first}") from None
    return ranks()


# ------------------------------------------------------------------ collectives


def reduce_mean(metrics: Mapping[str, float], where: Ranks) -> dict[str, float]:
    """The mean of each metric over the ranks (float64), the same dict on every rank.

    Every rank must pass the same keys (checked, so that a mismatch is an error,
    not a silent mix-up of values).
    """
    if where.world_size == 1:
        return {k: float(v) for k, v in metrics.items()}
    keys = sorted(metrics)
    for r, other in enumerate(gather_objects(keys, where)):
        if other != keys:
            raise ValueError(
                f"reduce_mean: rank {r} reports metrics {other}, rank {where.rank} {keys}"
            )
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    values = values.to(_collective_device(where))
    dist.all_reduce(values, group=where.group)
    return {
        k: float(v) / where.world_size for k, v in zip(keys, values.cpu().tolist(), strict=True)
    }


def reduce_sum(values: list[float], where: Ranks) -> list[float]:
    """``values`` summed over the ranks (float64, one collective), the same list on every rank;
    e.g. a task's validation totals and counts, each rank having scored its share."""
    if where.world_size == 1:
        return [float(v) for v in values]
    total = torch.tensor([float(v) for v in values], dtype=torch.float64)
    total = total.to(_collective_device(where))
    dist.all_reduce(total, group=where.group)
    return [float(v) for v in total.cpu().tolist()]


def gather_objects(obj: Any, where: Ranks) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (pickled, in memory only)."""
    if where.world_size == 1:
        return [obj]
    out: list[Any] = [None] * where.world_size
    dist.all_gather_object(out, obj, group=where.group)
    return out


def from_main(compute: Callable[[], Any], where: Ranks) -> Any:
    """Rank 0 runs ``compute()``; every rank returns its result or raises its error.

    An exception on rank 0 is sent to the other ranks and raised there as the
    same type with the same message, so that no rank waits for a peer that has
    given up.
    """
    if where.world_size == 1:
        return compute()
    box: list[Any] = [None]
    if where.is_main:
        try:
            box[0] = ("ok", compute())
        except Exception as e:  # sent on, then raised again below
            box[0] = ("error", e)
    src = dist.get_global_rank(where.group, 0) if where.group is not None else 0
    dist.broadcast_object_list(box, src=src, group=where.group, device=_collective_device(where))
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def _collective_device(where: Ranks) -> torch.device:
    backend = dist.get_backend(where.group)
    return (
        torch.device("cuda", torch.cuda.current_device())
        if backend == "nccl"
        else torch.device("cpu")
    )


# ------------------------------------------------------------------------- DDP


class Rows:
    """A batch that is built in parts: row numbers ``index`` (``(n,)``) and ``load``, which
    turns some of them into the batch a task's ``training_loss`` takes.

    A task's ``train_batches`` may yield these instead of built batches: the
    :class:`~lstmlens.train.Trainer` then builds only the rows this rank trains on
    (:meth:`take`), where every rank would otherwise build the whole batch and keep
    its part. ``load(index[lo:hi])`` must equal rows ``lo:hi`` of ``load(index)``.
    """

    def __init__(self, index: Any, load: Callable[[Any], Any]) -> None:
        self.index, self.load = index, load

    def __len__(self) -> int:
        return len(self.index)

    def take(self, lo: int, hi: int) -> Any:
        """The batch of rows ``lo:hi``."""
        return self.load(self.index[lo:hi])


class _Methods(nn.Module):
    """Runs ``model.<method>`` as its forward, so that DDP sees every forward-like call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, _method: str = "forward", **kwargs: Any) -> Any:
        return getattr(self.model, _method)(*args, **kwargs)


class DistributedModel:
    """``model`` inside ``DistributedDataParallel``, as a task's ``training_loss`` sees it.

    Calling it, or any method named ``forward*`` (e.g. an ensemble's
    ``forward_members``), runs through DDP's forward, so gradients are averaged
    over the ranks; every other attribute (``parameters()``, ``config``, ...) is
    the model's own.

    DDP keeps its defaults: one gradient allreduce a step (one bucket: the
    default models are far under 25 MB), no unused-parameter search, and a
    model's buffers (if any) sent from rank 0 before each forward. The options
    ``gradient_as_bucket_view`` and ``batched_grad_copy`` were measured (CPU
    time a step on 2 gloo ranks, the default character and global models) and
    changed nothing.
    """

    def __init__(self, model: nn.Module, where: Ranks) -> None:
        device = next(model.parameters()).device
        ids = [device] if device.type == "cuda" else None
        self.module = model
        self.ddp = nn.parallel.DistributedDataParallel(
            _Methods(model), device_ids=ids, process_group=where.group
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.ddp(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.module, name)
        if name.startswith("forward") and callable(attr):
            return lambda *args, **kwargs: self.ddp(*args, _method=name, **kwargs)
        return attr


# ------------------------------------------------------------------ dead peers

_PEERS: dict[int, dict[int, int]] = {}  # {this process's pid: {rank: pid of a peer on this host}}


def note_local_peers(where: Ranks | None = None) -> None:
    """Remember the pid of every other rank on this machine (one collective; call on every
    rank right after joining the group), for :func:`wait_for_dead_peers`."""
    where = ranks() if where is None else where
    if os.getpid() in _PEERS or where.world_size == 1:
        return
    me = (socket.gethostname(), os.getpid())
    everyone = gather_objects(me, where)
    _PEERS[os.getpid()] = {
        r: pid for r, (host, pid) in enumerate(everyone) if host == me[0] and r != where.rank
    }


def wait_for_dead_peers(grace: float = 10.0, settle: float = 0.2) -> list[int]:
    """After an error: let the launcher see a dead peer before this rank's follow-on error.

    A peer killed by a signal leaves a zombie until its launcher (torch's agent,
    here or under ``torchrun``) reaps it on its next poll; a survivor whose
    collective failed on the closed connection exits at once and may be polled
    first, and the launcher then reports the survivor. So, if a peer of this
    machine (:func:`note_local_peers`) is dead or dies within ``settle``
    seconds, wait (at most ``grace`` seconds) until it has been reaped, with
    SIGTERM's default action, so that the agent's stop ends this process
    quietly. Returns the ranks found dead ([]: none; the error is this rank's own).
    """
    peers = _PEERS.get(os.getpid(), {})
    if not peers:
        return []
    start = time.monotonic()
    dead: set[int] = set()
    restore = _default_sigterm()
    try:
        while time.monotonic() - start < grace:
            states = {r: _process_state(pid) for r, pid in peers.items()}
            dying = {r for r, s in states.items() if s in ("Z", "X")}
            dead |= dying | {r for r, s in states.items() if s is None}
            if not dying and (dead or time.monotonic() - start >= settle):
                break  # reaped (the launcher knows), or nobody died
            time.sleep(0.01)
    finally:
        restore()
    return sorted(dead)


def wait_for_main(grace: float = 10.0) -> None:
    """A rank > 0 whose command failed: wait while rank 0 of this machine still runs (at most
    ``grace`` seconds, with SIGTERM's default action).

    Bad input fails every rank alike, and rank 0 alone prints its one-line error
    (the others' output is silenced); waiting lets rank 0 fail first, so that the
    launcher reports rank 0 and adds no line of its own.
    """
    main = _PEERS.get(os.getpid(), {}).get(0)
    if main is None:
        return
    start = time.monotonic()
    restore = _default_sigterm()
    try:
        while _process_state(main) is not None and time.monotonic() - start < grace:
            time.sleep(0.01)
    finally:
        restore()


def _process_state(pid: int) -> str | None:
    """The state letter of ``pid`` in ``/proc`` (``Z``: a zombie), None when it is gone; ``?``
    where ``/proc`` cannot tell (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else "?"
    except (OSError, IndexError):
        return "?"


def _default_sigterm() -> Callable[[], None]:
    """SIGTERM ends this process at once (no handler, no traceback); returns the undo."""
    try:
        saved = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGTERM, saved)

    return restore


def __getattr__(name: str) -> Any:  # the launcher lives in its own module
    if name in ("launch", "WorkerFailedError"):
        from . import launcher

        return getattr(launcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
