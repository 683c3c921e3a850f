"""Run folders: how a command claims its ``--out`` folder.

``prepare_run_dir`` is the only way a command should claim an
``--out`` folder (call it after the inputs are validated, so that bad input
leaves no folder behind). It marks the folder with an empty ``.lstmlens-run``
file. The rules:

* a missing folder, an empty one, or one holding only the marker is used as is;
* any other folder is refused unless ``--force`` or ``--resume``;
* ``--force`` is refused on a folder without the marker (it was not made by
  lstmlens, e.g. ``--out .``); on a marked folder it deletes only the run files
  at its top level, the names matching :data:`RUN_FILE_PATTERNS` (config,
  weights, metrics, checkpoint, plots, HTML, log, leftover temporary files of
  ours and of safetensors); anything else (a user's notes, sub-folders, CSV
  files) is kept;
* a marked folder whose checkpoint has trained nothing (a run stopped in its
  first seconds) is reused like an empty one;
* ``--resume`` needs a usable checkpoint there, and refuses one recorded with
  other options (see :func:`lstmlens.cli.common.run_spec`); it touches nothing but the lock; ``--force`` with
  ``--resume`` is refused.

A claimed folder is locked (:mod:`lstmlens.train.lock`) until the command ends, so
a second command on the same folder is refused ("in use by another process"), and
a fresh claim writes the checkpoint of a run that has trained nothing yet, so that
a run stopped before its first epoch can be resumed or rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import LOG_FILE, write_atomic
from ..train import distributed
from ..train.checkpoint import (
    CHECKPOINT_JSON,
    CHECKPOINT_PREVIOUS,
    checkpoint_state,
    clean_stray_files,
    mark_started,
)
from ..train.lock import LOCK_FILE, acquire_run_lock
from ..train.resume import check_resume
from .errors import CLIError

__all__ = ["LOG_FILE", "RUN_FILE_PATTERNS", "RUN_MARKER", "TEMPORARY_PATTERNS", "prepare_run_dir"]

RUN_MARKER = ".lstmlens-run"
TEMPORARY_PATTERNS = (".*.tmp", ".tmp??????")  # what killed writes leave: ours, safetensors'
RUN_FILE_PATTERNS = (
    "*.json",
    "*.jsonl",
    "*.safetensors",
    "*.png",
    "*.svg",
    "*.html",
    "*.log",
    *TEMPORARY_PATTERNS,
)


def _run_files(folder: Path) -> list[Path]:
    """Top-level regular files of ``folder`` that match :data:`RUN_FILE_PATTERNS`."""
    found = {p for pattern in RUN_FILE_PATTERNS for p in folder.glob(pattern)}
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def _check_world_size(path: Path, state: dict[str, Any] | None) -> None:
    """Refuse to resume on another number of processes than the run was trained on."""
    if state is None or state.get("tensors") is None:
        return
    saved, asked = state.get("world_size") or 1, distributed.ranks().world_size
    if saved != asked:
        raise CLIError(
            f"cannot resume {path}: it was trained on {saved} process(es), this command runs "
            f"{asked}; use --nproc {saved}"
        )


def prepare_run_dir(
    out: str | Path, force: bool = False, resume: bool = False, spec: dict[str, Any] | None = None
) -> Path:
    """Claim ``out`` as a run folder following the rules in the module docstring.

    ``spec`` (:func:`run_spec`) is what the command line asks; with ``resume``
    it must equal the checkpoint's. Returns the folder (created if needed).
    Raises :class:`CLIError` naming the folder when the rules refuse it; nothing
    is deleted in that case.
    """
    path = Path(out)
    if force and resume:
        raise CLIError("--force and --resume cannot be used together")
    if not distributed.ranks().is_main:  # rank 0 claims the run folder; this one is scratch
        path.mkdir(parents=True, exist_ok=True)
        return path
    if path.exists() and not path.is_dir():
        raise CLIError(f"{path} exists and is not a folder")
    if resume:
        if not any((path / n).is_file() for n in (CHECKPOINT_JSON, CHECKPOINT_PREVIOUS)):
            raise CLIError(f"cannot resume: no checkpoint in {path} ({CHECKPOINT_JSON} missing)")
        acquire_run_lock(path)  # before reading: no one else writes it from now on
        clean_stray_files(path, patterns=TEMPORARY_PATTERNS)  # what a killed run left
        state = checkpoint_state(path)
        if spec is not None and state is not None and state.get("tensors") is not None:
            check_resume(state.get("spec") or {}, spec)
        _check_world_size(path, state)
        return path
    others = (
        [p for p in path.iterdir() if p.name not in (RUN_MARKER, LOCK_FILE)]
        if path.is_dir()
        else []
    )
    if others:
        marked = (path / RUN_MARKER).is_file()
        if not force and not (marked and _nothing_trained(path)):
            raise CLIError(
                f"{path} already exists and is not empty; use --force to replace the run in it, "
                "--resume to continue it, or another --out"
            )
        if not marked:
            raise CLIError(
                f"{path} is not an lstmlens run folder (no {RUN_MARKER} file), so --force will not "
                "delete anything in it; choose another --out"
            )
    path.mkdir(parents=True, exist_ok=True)
    acquire_run_lock(path)  # before deleting: never under a process still writing there
    for file in _run_files(path) if others else ():
        file.unlink()
    if not (path / RUN_MARKER).is_file():
        write_atomic(path / RUN_MARKER, lambda tmp: None)
    mark_started(path)
    return path


def _nothing_trained(path: Path) -> bool:
    """True when ``path``'s checkpoint is that of a run stopped before its first epoch ended."""
    try:
        state = checkpoint_state(path)
    except ValueError:
        return False
    return state is not None and state.get("epoch") == 0
