"""Files: atomic writes, JSON, PNG, and the one loader of run folders (:func:`load_run`).

Every layer may import this module; it imports nothing else of lstmlens at module level.

Atomic writes. :func:`write_atomic` writes to a temporary name in the same folder
(``.NAME.XXXX.tmp``), flushes it to disk, then moves it over the final name with
:func:`os.replace`: a reader sees the old file or the new one, never half of one, and no
temporary file is left behind, even when the write fails.

Run folders. Every ``config.json`` a command writes says what it holds::

    {"task": "forecast" | "text" | "classify" | "longrange", "format_version": 1, ...}

:func:`load_run` reads it and hands the folder to that task's loader (:data:`LOADERS`),
returning ``(model, config)``. A task or a version this lstmlens does not know is refused
with one line. Folders written before ``task``/``format_version`` existed still load: a
forecast run said ``"format": "lstmlens-forecast"``, a text run ``"task": "language"``, a
classification run held ``model``, ``classes`` and ``data``.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT_VERSION",
    "LOADERS",
    "LOG_FILE",
    "TASKS",
    "load_run",
    "read_json",
    "run_task",
    "save_json_atomic",
    "save_png",
    "stamp",
    "write_atomic",
    "write_json",
    "write_text",
]

#: The run-folder format this lstmlens writes (and the newest it reads).
FORMAT_VERSION = 1
#: The training log of a run folder (the reporter's lines, then the metrics table).
LOG_FILE = "train.log"
#: The tasks a run folder may hold.
TASKS = ("forecast", "text", "classify", "longrange")
#: task -> "module:function" of its loader, ``function(run_dir) -> (model, config)``.
#: Imported only when a run of that task is loaded, so this module depends on no task.
LOADERS: dict[str, str] = {
    "forecast": "lstmlens.tasks.forecast_run:load_forecast_run",
    "text": "lstmlens.tasks.text_run:load_text_run",
    "classify": "lstmlens.tasks.classify_run:load_classifier",
    "longrange": "lstmlens.tasks.longrange_run:load_longrange_run",
}
_LEGACY_FORECAST = "lstmlens-forecast"  # the "format" of forecast runs before format_version


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


# ---------------------------------------------------------------------- files


def write_atomic(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file, which then replaces it.

    ``write`` receives the temporary file's name (in the same folder, so that
    :func:`os.replace` is a rename on one file system). On any error the
    temporary file is removed and the previous ``path``, if any, is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp made 0600 (and writers may replace the file)
        with open(tmp, "rb+") as f:  # flush the bytes to disk before the rename
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def save_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically.

    Non-finite floats are written as ``NaN``/``Infinity`` (Python's ``json``
    reads them back). A value JSON cannot hold raises ``TypeError``.
    """
    try:
        text = json.dumps(obj, indent=2) + "\n"
    except TypeError as e:
        raise TypeError(f"save_json_atomic: {Path(path).name}: {e}") from None
    return write_text(path, text)


write_json = save_json_atomic


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON run file: never through a symbolic link, size capped (:mod:`lstmlens.runfiles`);
    a missing, unreadable, linked or malformed file raises ``ValueError`` naming it."""
    from .runfiles import read_json as read_run_json  # lstmlens.runfiles imports no lstmlens

    return read_run_json(path)


def save_png(fig: Any, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Write a matplotlib figure to ``path`` as PNG, atomically."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


# ------------------------------------------------------------------ run folders


def stamp(task: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``task`` and ``format_version`` first: what every run's config.json holds."""
    if task not in TASKS:
        raise ValueError(f"stamp: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    rest = {k: v for k, v in config.items() if k not in ("task", "format_version")}
    return {"task": task, "format_version": FORMAT_VERSION, **rest}


def _run_config(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: not a run folder (no such folder)")
    path = run_dir / "config.json"
    if not path.is_file():
        raise ValueError(f"{run_dir}: not a run folder (no config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def _task_of(config: Mapping[str, Any], where: Path) -> str:
    """The task a config.json names (old spellings included); ``ValueError`` if none is known."""
    task = config.get("task")
    if task is None:
        if config.get("format") == _LEGACY_FORECAST:
            return "forecast"
        if isinstance(config.get("model"), dict) and "classes" in config and "data" in config:
            return "classify"
        raise ValueError(f"{where}: names no task; expected one of {', '.join(TASKS)}")
    if task == "language":  # text runs before format_version
        return "text"
    if task not in TASKS:
        raise ValueError(
            f"{where}: unknown task {task!r}; this lstmlens reads {', '.join(TASKS)} runs"
        )
    version = config.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ValueError(
            f"{where}: run-folder format_version {version!r}; this lstmlens reads up to "
            f"{FORMAT_VERSION} (a newer lstmlens wrote it)"
        )
    return str(task)


def run_task(run_dir: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """``(task, config)`` of a run folder, without loading the model (``ValueError`` if unknown)."""
    run_dir = Path(run_dir)
    config = _run_config(run_dir)
    return _task_of(config, run_dir / "config.json"), config


def load_run(run_dir: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """The model and config of any task's run folder: ``model, config = load_run("runs/NAME")``.

    The model is what the task trains: a :class:`~lstmlens.tasks.forecast.Forecaster`,
    a :class:`~lstmlens.tasks.language.LanguageModel`, a
    :class:`~lstmlens.tasks.classify.SequenceClassifier`, or for a long-range race an
    ``nn.ModuleDict`` of one :class:`~lstmlens.tasks.longrange_compare.LongRangeModel` per
    cell; on CPU, in eval mode. ``config`` is the whole ``config.json``. A missing folder,
    an unknown task or format version, or an unreadable file raise ``ValueError`` naming it.
    """
    task, _ = run_task(run_dir)
    module, function = LOADERS[task].split(":")
    return getattr(importlib.import_module(module), function)(Path(run_dir))
