"""Many processes, one model: ``torch.distributed`` set-up, collectives and the local launcher.

lstmlens runs on PyTorch's own engine: a process group (gloo on CPU, nccl where
CUDA is present) joined from the ``torchrun`` environment, gradients averaged by
``DistributedDataParallel``, and N local workers started by torch's elastic
launcher (:func:`torch.distributed.launcher.api.elastic_launch`), the very
machinery behind ``torchrun``. Nothing here forks by hand.

* :func:`environment` reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR`` and ``MASTER_PORT``: all set (a worker of ``torchrun`` or of
  :func:`launch`), none set (one ordinary process), or a one-line ``ValueError``
  naming the missing ones.
* :func:`init_from_environment` joins the process group with a timeout on every
  collective, so that a dead peer ends a run with an error, never a hang.
* :class:`Ranks` says who this process is; :func:`reduce_mean`,
  :func:`gather_objects` and :func:`from_main` are the few collectives the
  trainer needs (validation metrics, every rank's RNG state, rank 0's checkpoint).
* :func:`launch` runs ``fn(*args)`` on N local workers and returns their results;
  a failed worker becomes one :class:`WorkerFailedError` line naming the rank.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    "WorkerFailedError",
    "backend_for",
    "environment",
    "from_main",
    "gather_objects",
    "init_from_environment",
    "launch",
    "ranks",
    "reduce_mean",
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


class WorkerFailedError(RuntimeError):
    """A worker of :func:`launch` failed; the message is one line naming the rank and its error.

    ``rank`` and ``exitcode`` say which worker failed first and how it exited
    (negative: killed by that signal).
    """

    def __init__(self, message: str, rank: int = -1, exitcode: int = 1) -> None:
        super().__init__(message)
        self.rank, self.exitcode = rank, exitcode


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


def backend_for(device: torch.device | str | None = None) -> str:
    """``nccl`` for a CUDA device (or, with no device given, when CUDA is present), else ``gloo``."""
    if device is None:
        return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def ranks(group: Any = None) -> Ranks:
    """This process's :class:`Ranks` in ``group`` (the default group); rank 0 of 1 if none."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank(group)))
    return Ranks(dist.get_rank(group), dist.get_world_size(group), local, group)


def init_from_environment(timeout: float = DEFAULT_TIMEOUT, backend: str | None = None) -> Ranks:
    """Join the default process group from the ``torchrun`` environment; returns :class:`Ranks`.

    Does nothing (and returns rank 0 of 1) when no variable is set, and returns
    the current ranks when the group already exists. Every collective of the
    group then fails after ``timeout`` seconds instead of waiting for ever.
    """
    env = environment()
    if dist.is_available() and dist.is_initialized():
        return ranks()
    if env is None:
        return Ranks()
    backend = backend or backend_for()
    if backend == "nccl":
        torch.cuda.set_device(int(env["LOCAL_RANK"]))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
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


# --------------------------------------------------------------------- launcher


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _check_port(port: int, host: str = "127.0.0.1") -> None:
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"launch: port must be an integer in [1, 65535], got {port!r}")
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            raise ValueError(f"launch: port {port} on {host} is already in use") from None


def _worker(fn: Callable[..., Any], args: Sequence[Any], timeout: float, threads: int) -> Any:
    """One worker: join the group, run ``fn``, leave the group (runs in the child process)."""
    if threads:
        torch.set_num_threads(threads)
    init_from_environment(timeout)
    try:
        return fn(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _failure(error: Exception) -> WorkerFailedError:
    """One line from the launcher's ``ChildFailedError``: the first failed rank and its error."""
    failures = getattr(error, "failures", None) or {}
    if not failures:
        return WorkerFailedError(f"a worker failed: {error}")
    # the cause: a rank killed by a signal, else the first to fail (its peers fail after it)
    rank = min(failures, key=lambda r: (failures[r].exitcode >= 0, failures[r].timestamp, r))
    failure = failures[rank]
    data = failure.error_file_data
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    if not isinstance(message, str) or message == "<NONE>":
        message = str(failure.message) or f"exit code {failure.exitcode}"
    message = " ".join(message.split())
    line = f"worker rank {rank} failed (exit code {failure.exitcode}): {message}"
    return WorkerFailedError(line, rank, failure.exitcode)


def launch(
    fn: Callable[..., Any],
    args: Sequence[Any] = (),
    nproc: int = 2,
    *,
    port: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    threads: int = 1,
    start_method: str = "spawn",
) -> dict[int, Any]:
    """Run ``fn(*args)`` on ``nproc`` local workers through torch's elastic launcher.

    Each worker joins the default process group (gloo on CPU, nccl with CUDA)
    with ``timeout`` seconds on every collective and ``threads`` torch threads.
    ``fn`` and ``args`` must be picklable when workers are spawned
    (``start_method``: ``"spawn"``, ``"fork"`` or ``"forkserver"``). Returns
    ``{rank: fn's return value}``. Rendezvous is on ``127.0.0.1:port`` (a free
    port when None).

    Raises:
        ValueError: ``nproc`` < 1, or ``port`` already in use (nothing started).
        WorkerFailedError: a worker failed or died; the others were stopped.
        KeyboardInterrupt: the launcher got SIGINT/SIGTERM; the workers were stopped
            (each trainer stops as on Ctrl-C: rank 0's last checkpoint stands).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise ValueError(f"launch: nproc must be an integer >= 1, got {nproc!r}")
    if port is None:
        port = _free_port()
    else:
        _check_port(port)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"lstmlens-{uuid.uuid4().hex}",
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{port}",
        rdzv_configs={"timeout": int(max(timeout, 1))},
        max_restarts=0,
        monitor_interval=0.1,
        start_method=start_method,
    )
    with _quiet_launcher(), _own_signal_handlers():
        try:
            return elastic_launch(config, _worker)(fn, list(args), timeout, threads)
        except ChildFailedError as e:
            raise _failure(e) from None
        except SignalException:  # Ctrl-C or SIGTERM: the agent has stopped every worker
            raise KeyboardInterrupt from None


@contextlib.contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """Give the caller its signal handlers back: torch's agent installs its own for SIGINT,
    SIGTERM, SIGHUP and SIGQUIT and leaves them in place after the launch returns."""
    signums = [
        getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n)
    ]
    saved = {n: signal.getsignal(n) for n in signums}
    try:
        yield
    finally:
        for n, handler in saved.items():
            if handler is not None:
                signal.signal(n, handler)


class _quiet_launcher:
    """Keep torch's launcher logs (stack traces, warnings) off the terminal: errors are one line."""

    _names = ("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing")

    def __enter__(self) -> None:
        self._levels = {n: logging.getLogger(n).level for n in self._names}
        for n in self._names:
            logging.getLogger(n).setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for n, level in self._levels.items():
            logging.getLogger(n).setLevel(level)
