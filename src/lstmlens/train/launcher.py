"""N local workers through torch's elastic launcher, the machinery behind ``torchrun``.

:func:`launch` runs ``fn(*args)`` on N local processes (torch's
:func:`~torch.distributed.launcher.api.elastic_launch`, a c10d rendezvous on a
free local port) and returns their results; each joins the default process
group (gloo for a CPU model, nccl for a CUDA one) with a timeout on every
collective. A failed worker stops the others and becomes one
:class:`WorkerFailedError` line naming the rank: the rank that died when one
was killed (its peers' "connection closed" errors are follow-ons, held back by
:func:`~lstmlens.train.distributed.wait_for_dead_peers` until the launcher has
seen the death), else the first to fail. Ctrl-C (SIGINT) or SIGTERM on the
launcher stops every worker and raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist

from .distributed import (
    DEFAULT_TIMEOUT,
    backend_for,
    init_from_environment,
    note_local_peers,
    wait_for_dead_peers,
)
from .signals import stopped_by_signal

__all__ = ["WorkerFailedError", "launch"]

EXIT_STOPPED = 130  # a worker whose trainer was stopped by the agent's SIGINT/SIGTERM


class WorkerFailedError(RuntimeError):
    """A worker of :func:`launch` failed; the message is one line naming the rank and its error.

    ``rank`` and ``exitcode`` say which worker failed and how it exited
    (negative: killed by that signal).
    """

    def __init__(self, message: str, rank: int = -1, exitcode: int = 1) -> None:
        super().__init__(message)
        self.rank, self.exitcode = rank, exitcode


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


def _worker(
    fn: Callable[..., Any], args: Sequence[Any], timeout: float, threads: int, backend: str
) -> Any:
    """One worker: join the group, run ``fn``, leave the group (runs in the child process).

    A forked worker inherits the agent's SIGINT/SIGTERM handlers (they raise torch's
    ``SignalException``); it gets the defaults back, so that a trainer in it stops on the
    signal the agent forwards as in any process (:class:`~lstmlens.train.signals.StopSignals`).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if threads:
        torch.set_num_threads(threads)
    init_from_environment(timeout, backend=backend)
    note_local_peers()
    try:
        result = fn(*args)
        if stopped_by_signal():  # the agent stops the workers: it awaits no result (nor
            sys.exit(EXIT_STOPPED)  # would the child end before it has read one)
        return result
    except Exception:
        wait_for_dead_peers()  # a peer's death, if that is the cause, is reported first
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _failure(error: Exception) -> WorkerFailedError:
    """One line from the launcher's ``ChildFailedError``: the failed rank and its error."""
    failures = getattr(error, "failures", None) or {}
    if not failures:
        return WorkerFailedError(f"a worker failed: {error}")
    # the cause: a rank killed by a signal, else the first to fail (torch's agent reports
    # one rank; peers of a dead rank wait until its death is seen: wait_for_dead_peers)
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
    device: torch.device | str = "cpu",
) -> dict[int, Any]:
    """Run ``fn(*args)`` on ``nproc`` local workers through torch's elastic launcher.

    Each worker joins the default process group (gloo when ``fn`` trains on the
    CPU, nccl when ``device`` is CUDA: :func:`~lstmlens.train.distributed.backend_for`)
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
            backend = backend_for(device)
            return elastic_launch(config, _worker)(fn, list(args), timeout, threads, backend)
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
    """Keep torch's launcher logs (stack traces, warnings such as "Received 2 death signal")
    off the terminal: errors are one line. torch's elastic modules set their own loggers'
    levels, so each existing logger under these names is silenced, not only the parents."""

    _names = ("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing")

    def __enter__(self) -> None:
        known = [n for n in logging.root.manager.loggerDict if n.startswith(self._names)]
        loggers = [logging.getLogger(n) for n in {*self._names, *known}]
        self._levels = {lg: lg.level for lg in loggers}
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for lg, level in self._levels.items():
            lg.setLevel(level)
