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
  weights, metrics, checkpoint, plots, HTML, log, leftover temporary files);
  anything else (a user's notes, sub-folders, CSV files) is kept;
* ``--resume`` needs ``checkpoint.json`` and ``checkpoint.safetensors`` there and
  touches nothing; ``--force`` with ``--resume`` is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..io import LOG_FILE, write_atomic
from ..train.checkpoint import CHECKPOINT_JSON, CHECKPOINT_TENSORS
from .errors import CLIError

__all__ = ["LOG_FILE", "RUN_FILE_PATTERNS", "RUN_MARKER", "prepare_run_dir"]

RUN_MARKER = ".lstmlens-run"
RUN_FILE_PATTERNS = (
    "*.json",
    "*.jsonl",
    "*.safetensors",
    "*.png",
    "*.svg",
    "*.html",
    "*.log",
    ".*.tmp",
)


def _run_files(folder: Path) -> list[Path]:
    """Top-level regular files of ``folder`` that match :data:`RUN_FILE_PATTERNS`."""
    found = {p for pattern in RUN_FILE_PATTERNS for p in folder.glob(pattern)}
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def prepare_run_dir(out: str | Path, force: bool = False, resume: bool = False) -> Path:
    """Claim ``out`` as a run folder following the rules in the module docstring.

    Returns the folder (created if needed). Raises :class:`CLIError` naming the
    folder when the rules refuse it; nothing is deleted in that case.
    """
    path = Path(out)
    if force and resume:
        raise CLIError("--force and --resume cannot be used together")
    if path.exists() and not path.is_dir():
        raise CLIError(f"{path} exists and is not a folder")
    if resume:
        missing = [n for n in (CHECKPOINT_JSON, CHECKPOINT_TENSORS) if not (path / n).is_file()]
        if missing:
            raise CLIError(f"cannot resume: no checkpoint in {path} ({', '.join(missing)} missing)")
        return path
    others = [p for p in path.iterdir() if p.name != RUN_MARKER] if path.is_dir() else []
    if others:
        if not force:
            raise CLIError(
                f"{path} already exists and is not empty; use --force to replace the run in it, "
                "--resume to continue it, or another --out"
            )
        if not (path / RUN_MARKER).is_file():
            raise CLIError(
                f"{path} is not an lstmlens run folder (no {RUN_MARKER} file), so --force will not "
                "delete anything in it; choose another --out"
            )
        for file in _run_files(path):
            file.unlink()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / RUN_MARKER).is_file():
        write_atomic(path / RUN_MARKER, lambda tmp: None)
    return path
