"""A standard output that may close under us: ``lstmlens forecast train ... | head -3``.

When the reader of a pipe exits, the next write raises ``BrokenPipeError``.
The command must not die of it: the run it is saving matters more than the
lines nobody reads. :func:`closed_stdout_is_quiet` swaps ``sys.stdout`` for a
guard that, on the first broken pipe, points the descriptor at ``/dev/null``
(so no later write or the interpreter's last flush fails either) and drops the
rest of the output; the command carries on, saves its run, and ends with its
usual status and no message.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["GuardedStdout", "closed_stdout_is_quiet"]


class GuardedStdout:
    """Wraps a text stream; writes after a broken pipe are dropped (``broken`` tells)."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._inner.write(text)
            except BrokenPipeError:
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._inner.flush()
            except BrokenPipeError:
                self._break()

    def _break(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._inner.fileno())  # the unflushed rest goes nowhere, quietly
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._inner, name)


@contextlib.contextmanager
def closed_stdout_is_quiet() -> Iterator[GuardedStdout]:
    """``sys.stdout`` guarded by :class:`GuardedStdout` inside the block."""
    original = sys.stdout
    guard = GuardedStdout(original)
    sys.stdout = guard
    try:
        yield guard
    finally:
        guard.flush()
        sys.stdout = original


def emit(text: str, output: str | os.PathLike[str] | None, written: str | None = None) -> None:
    """A command's table: ``text`` to stdout, or written atomically to the file ``output``
    (then the line ``written``, if any, is printed)."""
    from ..io import write_text

    if output is None:
        sys.stdout.write(text)
        return
    write_text(output, text)
    if written:
        print(written)
