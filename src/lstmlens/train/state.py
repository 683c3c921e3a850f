"""What a checkpoint holds besides weights: optimizer and RNG states, as tensors + JSON.

Each state is split into tensors (stored in the checkpoint's safetensors file)
and plain values (stored in its JSON), so that a checkpoint never needs pickle.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["load_optimizer_state", "optimizer_state", "restore_rng_state", "rng_state"]


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
    numpy_state = np.random.get_state(legacy=True)  # noqa: NPY002 (the legacy global RNG tasks may use)
    assert isinstance(numpy_state, tuple)  # legacy=True: (kind, keys, pos, has_gauss, gauss)
    kind, keys, pos, has_gauss, gauss = numpy_state
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
