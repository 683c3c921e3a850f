"""One writer per run folder: an advisory lock on ``RUN/.lstmlens-lock``.

A process that writes a run folder (the command that claims it, the trainer that
checkpoints into it) holds an exclusive ``flock`` on the lock file for as long as
it writes; a second process asking for the same folder is refused at once with
:class:`RunFolderBusyError` ("run folder X is in use by another process (pid N)")
instead of both writing. The kernel drops the lock when the holder exits, killed
or not, so a stale lock file never blocks a later run; the file stays in the
folder (deleting a lock file that someone may hold would break the lock).

Within one process the lock is re-entrant: :func:`acquire_run_lock` counts, and
:func:`release_run_lock` closes the file when the count returns to zero. Where
``fcntl`` or file locks are not available (Windows, some network file systems)
locking is skipped rather than refusing to run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (not POSIX)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_FILE",
    "RunFolderBusyError",
    "acquire_run_lock",
    "release_run_lock",
    "release_run_locks",
    "run_lock",
]

LOCK_FILE = ".lstmlens-lock"

_guard = threading.Lock()
_held: dict[Path, list[int]] = {}  # folder -> [file descriptor, count]


class RunFolderBusyError(OSError):
    """Another process holds the run folder's lock (one line: which folder, which pid)."""

    def __init__(self, folder: Path, pid: str) -> None:
        super().__init__(
            errno.EBUSY, f"run folder {folder} is in use by another process (pid {pid})"
        )


def _key(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir).resolve()


def acquire_run_lock(run_dir: str | os.PathLike) -> None:
    """Lock ``run_dir`` (which must exist) for this process, or raise :class:`RunFolderBusyError`."""
    if fcntl is None:  # pragma: no cover
        return
    key = _key(run_dir)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return
        path = key / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)  # no lock support on this file system: run unlocked
                return
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderBusyError(Path(run_dir), holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[key] = [fd, 1]


def release_run_lock(run_dir: str | os.PathLike) -> None:
    """Undo one :func:`acquire_run_lock`; the lock is dropped when none is left."""
    key = _key(run_dir)
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            os.close(entry[0])  # closing the descriptor releases the flock


def release_run_locks() -> None:
    """Drop every run lock this process holds (the command line calls this when a command ends)."""
    with _guard:
        entries = list(_held.values())
        _held.clear()
    for fd, _ in entries:
        os.close(fd)


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """``with run_lock(folder):`` holds the folder's lock for the block."""
    acquire_run_lock(run_dir)
    try:
        yield
    finally:
        release_run_lock(run_dir)
