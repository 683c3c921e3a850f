"""Saving and loading: atomic files, saved models and crash-safe training checkpoints.

Everything written here is either JSON or safetensors; nothing is ever pickled,
so loading a model or a checkpoint never runs code. Every file is written
atomically: to a temporary name in the same folder (``.NAME.XXXX.tmp``), flushed
to disk, then moved over the final name with :func:`os.replace`. A reader sees
the old file or the new one, never half of one, and no temporary file is left
behind when the write fails (a killed process leaves one: see
:func:`clean_stray_files`). A failed write (disk full, no permission) raises an
``OSError`` naming the final file.

A saved model is a folder holding

* ``model.safetensors``: the model's ``state_dict``; tensors that are the very
  same view (tied weights) are stored once and listed as aliases in the
  safetensors metadata;
* ``config.json``: the dictionary the caller passes, from which ``build``
  rebuilds the module before the weights are loaded.

A training checkpoint is a pair: ``checkpoint-<random hex>.safetensors`` (every
tensor: weights, best weights, optimizer moments, RNG states) and
``checkpoint.json`` (everything else), which names that file and records its
SHA-256. :func:`save_checkpoint` writes a new pair in this order, so that a kill
at any instant leaves a loadable one:

1. the new weights file (unique name; fsync, rename, fsync of the folder);
2. ``checkpoint.prev.json``: a hard link to the current ``checkpoint.json``, so
   the old pair stays complete and findable under its own name;
3. the new ``checkpoint.json`` (fsync, atomic rename, fsync of the folder): the
   new pair is now the checkpoint;
4. the old pair removed (``checkpoint.prev.json``, then every other weights file).

:func:`load_checkpoint` reads ``checkpoint.json``, checks that it names a
weights file of this folder and that the file's SHA-256 is the recorded one, and
falls back to ``checkpoint.prev.json``'s pair when the newest is missing,
incomplete or damaged. A ``checkpoint.json`` whose ``tensors`` is ``null`` (see
:func:`mark_started`) says "a run was started here, nothing is trained yet".
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from .. import runfiles
from ..io import read_json, save_json_atomic, write_atomic
from ..runschema import check_run
from . import tensorfile

__all__ = [
    "CHECKPOINT_JSON",
    "CHECKPOINT_PREVIOUS",
    "METRICS_LOG",
    "MODEL_CONFIG",
    "MODEL_WEIGHTS",
    "STRAY_PATTERNS",
    "Checkpoint",
    "checkpoint_state",
    "clean_stray_files",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "mark_started",
    "naming_os_errors",
    "read_checkpoint",
    "read_json",
    "save_checkpoint",
    "save_json_atomic",
    "save_model",
    "write_atomic",
]

MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
CHECKPOINT_JSON = "checkpoint.json"
CHECKPOINT_PREVIOUS = "checkpoint.prev.json"
METRICS_LOG = "metrics.jsonl"
#: Temporary files a killed writer of this module leaves (``write_atomic`` names them
#: ``.NAME.XXXXXXXX.tmp``), and safetensors' own (``.tmpXXXXXX``, left by older lstmlens).
STRAY_PATTERNS = (
    ".checkpoint*.tmp",
    ".metrics.jsonl.*.tmp",
    ".model.safetensors.*.tmp",
    ".config.json.*.tmp",
    ".tmp??????",
)

_CHECKPOINT_FORMAT = "lstmlens-checkpoint"
_M = TypeVar("_M", bound=nn.Module)  # the model type a builder returns
_CHECKPOINT_VERSION = 2
_WEIGHTS_NAME = re.compile(r"checkpoint-[0-9a-f]{32}\.safetensors")


# --------------------------------------------------------------------- tensors


@contextlib.contextmanager
def naming_os_errors(path: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` (disk full, no permission, ...) as one naming ``path``."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def _fsync_dir(folder: Path) -> None:
    """Make the renames and new names in ``folder`` durable (where the system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows, which cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder
        pass
    finally:
        os.close(fd)


def _fill(tmp: str, data: bytes) -> None:
    """Write ``data`` into the temporary file ``tmp`` (one place where the bytes hit the disk)."""
    with open(tmp, "wb") as f:
        f.write(data)


def _write_safetensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]
) -> str:
    """Write ``tensors`` to ``path`` atomically; returns the SHA-256 (hex) of the file's bytes."""
    data = tensorfile.serialize(tensors, metadata)
    with naming_os_errors(path):
        write_atomic(path, lambda tmp: _fill(tmp, data))
    return hashlib.sha256(data).hexdigest()


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata, expanding aliases; failures are ``ValueError`` naming ``path``."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        return tensorfile.expand_aliases(load_file(str(path)), metadata), metadata
    except Exception as e:  # safetensors raises its own error types on corrupt files
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None


# ---------------------------------------------------------------------- models


def save_model(run_dir: str | os.PathLike, model: nn.Module, config: Mapping[str, Any]) -> Path:
    """Save ``model`` into ``run_dir`` as ``model.safetensors`` + ``config.json`` (atomically).

    ``config`` must be JSON-serialisable and hold what ``build`` in
    :func:`load_model` needs to rebuild the module. Returns ``run_dir``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        json.dumps(config)
    except TypeError as e:
        raise TypeError(f"save_model: config must be JSON-serialisable: {e}") from None
    _write_safetensors(run_dir / MODEL_WEIGHTS, model.state_dict(), {"format": "lstmlens-model"})
    with naming_os_errors(run_dir / MODEL_CONFIG):
        save_json_atomic(run_dir / MODEL_CONFIG, dict(config))
    return run_dir


def load_model(run_dir: str | os.PathLike, build: Callable[[dict], _M]) -> tuple[_M, dict]:
    """Rebuild a model saved by :func:`save_model`: ``model = build(config)``, then its weights.

    Returns ``(model, config)`` with the model on CPU in eval mode. A missing or
    corrupt file, a symbolic link, a config that fails :func:`~lstmlens.runschema.check_run`
    (checked against the weights' header before ``build`` runs), or weights that
    do not fit the model built from the config, raise ``ValueError`` naming the file.
    """
    run_dir = Path(run_dir)
    config = check_run(run_dir)  # schema, sizes against the header; no file through a link
    weights = run_dir / MODEL_WEIGHTS
    state = tensorfile.parse(runfiles.read_bytes(weights), weights)
    model = build(config)
    load_weights(model, state, run_dir / MODEL_WEIGHTS)
    model.eval()
    return model, config


def load_weights(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike
) -> None:
    """``model.load_state_dict(state)`` with a ``ValueError`` naming ``source`` on any mismatch."""
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{source}: weights do not match the model: missing {missing}, unexpected {unexpected}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise ValueError(f"{source}: weights do not match the model ({detail})") from None


# ----------------------------------------------------------------- checkpoints


def _link_atomic(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` atomically (a copy where links are refused)."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.link(source, tmp)
    except OSError:  # no hard links on this file system
        write_atomic(target, lambda t: _fill(t, source.read_bytes()))
        return
    try:
        os.replace(tmp, target)
    finally:  # a rename onto a link to the same file does nothing and leaves tmp (POSIX)
        tmp.unlink(missing_ok=True)


def save_checkpoint(
    run_dir: str | os.PathLike, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]
) -> Path:
    """Write a training checkpoint as a new pair, then retire the old one (module docstring).

    ``tensors`` go to a new uniquely named safetensors file, ``state`` (JSON)
    to ``checkpoint.json`` with that file's name and SHA-256. Returns the
    weights file. An ``OSError`` (disk full, ...) names the file it failed on;
    the previous pair is then still the checkpoint.
    """
    run_dir = Path(run_dir)
    weights = run_dir / f"checkpoint-{uuid.uuid4().hex}.safetensors"
    sha256 = _write_safetensors(weights, tensors, {"format": _CHECKPOINT_FORMAT})
    current, previous = run_dir / CHECKPOINT_JSON, run_dir / CHECKPOINT_PREVIOUS
    with naming_os_errors(previous):
        if current.is_file():
            _link_atomic(current, previous)
    _fsync_dir(run_dir)
    doc = {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION}
    doc.update(tensors=weights.name, sha256=sha256)
    with naming_os_errors(current):
        save_json_atomic(current, {**doc, **state})
    _fsync_dir(run_dir)
    _retire_old_pairs(run_dir, keep=weights.name)
    return weights


def _retire_old_pairs(run_dir: Path, keep: str) -> None:
    """Remove ``checkpoint.prev.json``, then every checkpoint weights file but ``keep``."""
    previous = run_dir / CHECKPOINT_PREVIOUS
    with naming_os_errors(previous):
        previous.unlink(missing_ok=True)
    for old in run_dir.glob("checkpoint-*.safetensors"):
        if old.name != keep and _WEIGHTS_NAME.fullmatch(old.name):
            with naming_os_errors(old):
                old.unlink(missing_ok=True)


def mark_started(run_dir: str | os.PathLike) -> None:
    """Write the checkpoint of a run that has started and trained nothing yet (epoch 0, no tensors).

    A command calls it when it claims a run folder, so that a run stopped before
    its first real checkpoint can be resumed (it starts afresh) or rerun.
    """
    run_dir = Path(run_dir)
    doc = {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION}
    doc.update(tensors=None, epoch=0)
    with naming_os_errors(run_dir / CHECKPOINT_JSON):
        save_json_atomic(run_dir / CHECKPOINT_JSON, doc)
    _fsync_dir(run_dir)


@dataclass
class Checkpoint:
    """What :func:`read_checkpoint` found: the tensors, the JSON state and which file named them."""

    tensors: dict[str, torch.Tensor]  # empty for a run that has trained nothing yet
    state: dict[str, Any]  # the JSON document, including ``tensors`` and ``sha256``
    source: Path  # checkpoint.json, or checkpoint.prev.json when the newest pair was unusable


def _read_pair(run_dir: Path, name: str) -> tuple[dict[str, Any], bytes | None]:
    """The JSON of checkpoint file ``name`` and the verified bytes of the weights it names."""
    json_path = run_dir / name
    state = read_json(json_path)
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{json_path}: not an lstmlens checkpoint")
    if state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(
            f"{json_path}: checkpoint version {state.get('version')!r}, "
            f"this lstmlens reads version {_CHECKPOINT_VERSION}"
        )
    weights = state.get("tensors")
    if weights is None:
        if state.get("epoch") != 0:
            raise ValueError(
                f"{json_path}: names no weights file but is at epoch {state.get('epoch')!r}"
            )
        return state, None
    if not isinstance(weights, str) or not _WEIGHTS_NAME.fullmatch(weights):
        raise ValueError(f"{json_path}: names {weights!r}, not a checkpoint file of this folder")
    path = run_dir / weights
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found (named by {name})") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != state.get("sha256"):
        raise ValueError(f"{path}: does not match the SHA-256 recorded in {name} (damaged)")
    return state, data


def _newest_pair(run_dir: Path) -> tuple[Path, dict[str, Any], bytes | None]:
    """The newest usable pair: ``checkpoint.json``'s, else ``checkpoint.prev.json``'s.

    When neither is usable, the error is the one about ``checkpoint.json``.
    """
    errors = []
    for name in (CHECKPOINT_JSON, CHECKPOINT_PREVIOUS):
        try:
            return (run_dir / name, *_read_pair(run_dir, name))
        except ValueError as e:
            errors.append(e)
    raise errors[0]


def read_checkpoint(run_dir: str | os.PathLike) -> Checkpoint:
    """The newest usable checkpoint in ``run_dir`` (see the module docstring).

    Raises ``ValueError`` naming the file when there is none: missing,
    corrupt, of another format or version, or a weights file that is not the
    one ``checkpoint.json`` recorded.
    """
    run_dir = Path(run_dir)
    source, state, data = _newest_pair(run_dir)
    tensors = {} if data is None else tensorfile.parse(data, run_dir / state["tensors"])
    return Checkpoint(tensors, state, source)


def load_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, state)`` of :func:`read_checkpoint`."""
    found = read_checkpoint(run_dir)
    return found.tensors, found.state


def checkpoint_state(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON state of the newest usable checkpoint (its weights verified, not parsed).

    ``None`` when ``run_dir`` holds no checkpoint file at all; ``ValueError``
    when it holds one that cannot be used.
    """
    run_dir = Path(run_dir)
    if not any((run_dir / n).is_file() for n in (CHECKPOINT_JSON, CHECKPOINT_PREVIOUS)):
        return None
    return _newest_pair(run_dir)[1]


def clean_stray_files(
    run_dir: str | os.PathLike, patterns: tuple[str, ...] = STRAY_PATTERNS
) -> list[str]:
    """Remove what a killed writer leaves in ``run_dir``; returns the names removed.

    That is the top-level files matching ``patterns`` (temporary files) and
    checkpoint weights that no checkpoint JSON names. Call it only while
    holding the folder's lock (:mod:`lstmlens.train.lock`), when nothing else
    writes there.
    """
    run_dir = Path(run_dir)
    named = set()
    for name in (CHECKPOINT_JSON, CHECKPOINT_PREVIOUS):
        try:
            doc = json.loads((run_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("tensors"), str):
            named.add(doc["tensors"])
    removed = []
    for path in sorted(run_dir.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        temporary = any(fnmatch.fnmatchcase(path.name, p) for p in patterns)
        orphan = _WEIGHTS_NAME.fullmatch(path.name) is not None and path.name not in named
        if temporary or orphan:
            with naming_os_errors(path):
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
