"""The folder of built kernels: private to this user, and every library verified before loading.

Loading a shared library runs its code, so the loader trusts only files no one else could have
written:

* a cache folder is used only when it is a directory owned by this user and writable by no
  one else (group and others lack ``w``), or a link of ours to one; one created here gets mode
  0700. :func:`unsafe` says why a folder fails, :func:`private_folder` creates and checks one;
  :func:`temporary_folder` is the fallback, a fresh ``tempfile.mkdtemp`` folder (mode 0700,
  removed at exit), never a shared ``/tmp`` name anyone can predict;
* a library is loaded only when it is a regular file owned by this user, writable by no one
  else, and its SHA-256 matches the ``<library>.sha256`` file written beside it when it was
  built (:func:`record`, :func:`verify`). A truncated or half-written library is caught here,
  before it is mapped: mapping one kills the process with SIGBUS.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["private_folder", "record", "remove", "temporary_folder", "unsafe", "verify"]

MISSING = "not built yet"


def _owner_problem(st: os.stat_result) -> str | None:
    """Why a file or folder with this ``lstat`` could have been written by someone else."""
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid is not None and st.st_uid != uid:
        return f"owned by uid {st.st_uid}, not by this user (uid {uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def unsafe(folder: Path) -> str | None:
    """Why ``folder`` may not hold libraries we load; None when it is private to this user.
    A symbolic link passes when it is ours and leads to a private folder."""
    try:
        link, st = os.lstat(folder), os.stat(folder)
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    if stat.S_ISLNK(link.st_mode):
        uid = os.geteuid() if hasattr(os, "geteuid") else link.st_uid
        if link.st_uid != uid:  # (a link's own mode is always 0777)
            return f"a symbolic link owned by uid {link.st_uid}, not by this user (uid {uid})"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    return _owner_problem(st)


def private_folder(folder: Path) -> Path:
    """``folder`` (resolved), created with mode 0700 if absent (its parents as usual), once it
    passes :func:`unsafe`. Raises ``PermissionError`` naming the problem otherwise."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    problem = unsafe(folder)
    if problem:
        raise PermissionError(problem)
    return folder.resolve()


def temporary_folder() -> Path:
    """A fresh private folder (``tempfile.mkdtemp``: mode 0700), removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="lstmlens-native-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _sidecar(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _digest(fd: int) -> str:
    h = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _open_private(path: Path) -> tuple[int, os.stat_result]:
    """An fd of ``path`` (never through a symbolic link) and its stat; raises ``PermissionError``
    when it is not a regular file of ours that no one else can write."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    st = os.fstat(fd)
    problem = "not a regular file" if not stat.S_ISREG(st.st_mode) else _owner_problem(st)
    if problem:
        os.close(fd)
        raise PermissionError(f"{path.name} is {problem}")
    return fd, st


def record(library: Path) -> None:
    """Write ``<library>.sha256`` (``sha256sum`` format), atomically and durably."""
    fd, _ = _open_private(library)
    try:
        digest = _digest(fd)
    finally:
        os.close(fd)
    side = _sidecar(library)
    tmp_fd, tmp = tempfile.mkstemp(prefix=side.name + ".", suffix=".tmp", dir=library.parent)
    try:
        with os.fdopen(tmp_fd, "w") as f:
            f.write(f"{digest}  {library.name}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, side)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def verify(library: Path) -> str | None:
    """Why ``library`` must not be loaded (:data:`MISSING` when it is not there); None when it
    is ours and matches its recorded SHA-256."""
    if not os.path.lexists(library):
        return MISSING
    try:
        fd, st = _open_private(library)
    except OSError as e:
        return f"{library.name} cannot be checked: {e}"
    try:
        digest = _digest(fd)
    finally:
        os.close(fd)
    try:
        side_fd, _ = _open_private(_sidecar(library))
        with os.fdopen(side_fd) as f:
            recorded = f.read(200).split()
    except (OSError, UnicodeDecodeError) as e:
        return f"{library.name} has no usable SHA-256 record ({type(e).__name__})"
    if recorded[:1] != [digest]:
        return f"{library.name} ({st.st_size} bytes) does not match its recorded SHA-256"
    return None


def remove(library: Path) -> None:
    """Delete ``library`` and its record (those that exist)."""
    for p in (library, _sidecar(library)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
