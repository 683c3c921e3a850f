"""Saving and loading: atomic files, saved models and training checkpoints.

Everything written here is either JSON or safetensors; nothing is ever pickled,
so loading a model or a checkpoint never runs code. Every file is written
atomically: to a temporary name in the same folder (``.NAME.XXXX.tmp``), flushed
to disk, then moved over the final name with :func:`os.replace`. A reader sees
the old file or the new one, never half of one, and no temporary file is left
behind, even when the write fails.

A saved model is a folder holding

* ``model.safetensors``: the model's ``state_dict``; tensors that are the very
  same view (tied weights) are stored once and listed as aliases in the
  safetensors metadata;
* ``config.json``: the dictionary the caller passes, from which ``build``
  rebuilds the module before the weights are loaded.

A training checkpoint is the pair ``checkpoint.safetensors`` (every tensor:
weights, best weights, optimizer moments, RNG states) and ``checkpoint.json``
(everything else). Both carry the same random ``token``; a pair whose tokens
differ (a crash between the two writes) is refused instead of silently mixing
two epochs.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..io import read_json, save_json_atomic, write_atomic

__all__ = [
    "CHECKPOINT_JSON",
    "CHECKPOINT_TENSORS",
    "METRICS_LOG",
    "MODEL_CONFIG",
    "MODEL_WEIGHTS",
    "load_checkpoint",
    "load_model",
    "load_optimizer_state",
    "load_weights",
    "optimizer_state",
    "restore_rng_state",
    "rng_state",
    "read_json",
    "save_checkpoint",
    "save_json_atomic",
    "save_model",
    "write_atomic",
]

MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_JSON = "checkpoint.json"
METRICS_LOG = "metrics.jsonl"

_CHECKPOINT_FORMAT = "lstmlens-checkpoint"
_CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------- tensors


def _view_key(t: torch.Tensor) -> tuple:
    """Identity of a view: two names with the same key are the same tensor (tied weights)."""
    return (
        t.device,
        t.dtype,
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        t.shape,
        t.stride(),
    )


def _write_safetensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """Write ``tensors`` atomically; exact aliases are stored once and named in the metadata.

    Every stored tensor is a detached, contiguous CPU copy, so views that share
    storage without being identical (which safetensors refuses) become
    independent tensors.
    """
    store: dict[str, torch.Tensor] = {}
    canonical: dict[tuple, str] = {}
    aliases: dict[str, str] = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"_write_safetensors: {name} is {type(t).__name__}, expected a tensor")
        key = _view_key(t)
        if key in canonical:
            aliases[name] = canonical[key]
            continue
        canonical[key] = name
        store[name] = t.detach().to("cpu", copy=True).contiguous()
    meta = dict(metadata)
    if aliases:
        meta["aliases"] = json.dumps(aliases)
    write_atomic(path, lambda tmp: save_file(store, tmp, metadata=meta))


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata, expanding aliases; failures are ``ValueError`` naming ``path``."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
        aliases = json.loads(metadata.pop("aliases", "{}"))
        for name, target in aliases.items():
            tensors[name] = tensors[target]
    except Exception as e:  # safetensors raises its own error types on corrupt files
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    return tensors, metadata


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
    save_json_atomic(run_dir / MODEL_CONFIG, dict(config))
    return run_dir


def load_model(
    run_dir: str | os.PathLike, build: Callable[[dict], nn.Module]
) -> tuple[nn.Module, dict]:
    """Rebuild a model saved by :func:`save_model`: ``model = build(config)``, then its weights.

    Returns ``(model, config)`` with the model on CPU in eval mode. A missing or
    corrupt file, or weights that do not fit the model built from the config,
    raise ``ValueError`` naming the file.
    """
    run_dir = Path(run_dir)
    config = read_json(run_dir / MODEL_CONFIG)
    if not isinstance(config, dict):
        raise ValueError(
            f"{run_dir / MODEL_CONFIG}: expected a JSON object, got {type(config).__name__}"
        )
    state, _ = _read_safetensors(run_dir / MODEL_WEIGHTS)
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


def save_checkpoint(
    run_dir: str | os.PathLike, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]
) -> None:
    """Write a training checkpoint: ``tensors`` to safetensors, ``state`` (JSON) beside it.

    Both files get the same fresh token; the JSON file is written last, so a
    JSON file always names the safetensors file that belongs to it.
    """
    run_dir = Path(run_dir)
    token = uuid.uuid4().hex
    meta = {"format": _CHECKPOINT_FORMAT, "token": token}
    _write_safetensors(run_dir / CHECKPOINT_TENSORS, tensors, meta)
    doc = {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION, "token": token}
    save_json_atomic(run_dir / CHECKPOINT_JSON, {**doc, **state})


def load_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensors, state)``.

    Raises ``ValueError`` naming the file when either file is missing, corrupt,
    of another format, or when the two files come from different saves.
    """
    run_dir = Path(run_dir)
    json_path, tensor_path = run_dir / CHECKPOINT_JSON, run_dir / CHECKPOINT_TENSORS
    state = read_json(json_path)
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{json_path}: not an lstmlens checkpoint")
    if state.get("version") != _CHECKPOINT_VERSION:
        raise ValueError(
            f"{json_path}: checkpoint version {state.get('version')!r}, "
            f"this lstmlens reads version {_CHECKPOINT_VERSION}"
        )
    tensors, meta = _read_safetensors(tensor_path)
    if meta.get("token") != state.get("token"):
        raise ValueError(
            f"{tensor_path}: does not belong to {json_path.name} (saved by another epoch; "
            "the run was killed while saving)"
        )
    return tensors, state


# ------------------------------------------------ optimizer and RNG, as tensors + JSON


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (``optimizer/{param}/{key}``) and JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "state": plain}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], doc: Mapping[str, Any]
) -> None:
    """Inverse of :func:`optimizer_state`: rebuild the state dict and load it into ``optimizer``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer/"):
            _, pid, key = name.split("/", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in doc["state"].items():
        state.setdefault(int(pid), {}).update(entries)
    groups = [dict(g) for g in doc["param_groups"]]
    if len(groups) != len(optimizer.param_groups):
        raise ValueError(
            f"load_optimizer_state: checkpoint has {len(groups)} parameter groups, "
            f"the optimizer has {len(optimizer.param_groups)}"
        )
    for saved, current in zip(groups, optimizer.param_groups, strict=True):
        for key, value in saved.items():  # JSON turned tuples (Adam's betas) into lists
            if isinstance(current.get(key), tuple) and isinstance(value, list):
                saved[key] = tuple(value)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state(generator: torch.Generator) -> tuple[dict[str, torch.Tensor], dict]:
    """Every random state a run draws from: torch (CPU, CUDA), ``generator``, NumPy, ``random``."""
    tensors = {"rng/torch": torch.get_rng_state(), "rng/task": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the legacy global RNG tasks may use)
    tensors["rng/numpy"] = torch.from_numpy(keys.astype(np.int64))  # (624,) MT19937 words
    version, words, gauss_next = random.getstate()
    doc = {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(words), gauss_next],
    }
    return tensors, doc


def restore_rng_state(
    generator: torch.Generator, tensors: Mapping[str, torch.Tensor], doc: Mapping[str, Any]
) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/task"])
    names = [k for k in tensors if k.startswith("rng/cuda/")]
    cuda = [tensors[k] for k in sorted(names, key=lambda k: int(k.rsplit("/", 1)[1]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, gauss = doc["numpy"]
    keys = tensors["rng/numpy"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))  # noqa: NPY002
    version, words, gauss_next = doc["python"]
    random.setstate((version, tuple(words), gauss_next))
