"""Stopping cleanly: SIGINT (Ctrl-C) and SIGTERM both become ``KeyboardInterrupt``, never mid-save.

:class:`StopSignals` is installed around a training loop. A signal arriving
outside :meth:`StopSignals.held` raises ``KeyboardInterrupt`` at once (the loop
saves nothing half-done: the last checkpoint stands); one arriving inside
``held()`` (while a checkpoint is being written) is remembered and raised when
the block ends. SIGTERM, which ``kill``, ``timeout`` and job schedulers send, is
treated exactly like Ctrl-C. Handlers are installed only in the main thread and
only over the defaults (Python's SIGINT handler, SIGTERM's default action), so a
program that set its own keeps it; the previous handlers return on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["StopSignals", "stopped_by_signal"]

_RECEIVED: dict[int, str] = {}  # {pid: the first stop signal a StopSignals there has taken}


def stopped_by_signal() -> str | None:
    """The first stop signal (``"SIGINT"``/``"SIGTERM"``) any :class:`StopSignals` of this
    process has taken, or None (e.g. a launched worker asks whether its agent stopped it;
    keyed by pid, so a forked child does not inherit its parent's)."""
    return _RECEIVED.get(os.getpid())


_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


class StopSignals:
    """``with StopSignals() as stops:`` turns SIGINT/SIGTERM into ``KeyboardInterrupt``.

    After the interrupt, ``stops.received`` names the signal (``"SIGINT"`` or
    ``"SIGTERM"``).
    """

    def __init__(self) -> None:
        self._holding = False
        self._pending = False
        self._previous: dict[int, Any] = {}
        self.received: str | None = None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum, default in _DEFAULTS.items():
                if signal.getsignal(signum) is default:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name
        _RECEIVED.setdefault(os.getpid(), self.received)
        if self._holding:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A block that a stop signal does not cut short (it is raised when the block ends)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt
