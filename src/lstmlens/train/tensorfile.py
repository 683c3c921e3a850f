"""Safetensors bytes: tied weights stored once, metadata read back, one-line errors.

Pure functions between tensors and the bytes of a safetensors file; writing
those bytes to disk is :mod:`lstmlens.train.checkpoint`'s business.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load, save

__all__ = ["expand_aliases", "parse", "serialize"]


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


def serialize(tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors bytes of ``tensors``; exact aliases are stored once, named in the metadata.

    Every stored tensor is a detached, contiguous CPU copy, so views that share
    storage without being identical (which safetensors refuses) become
    independent tensors.
    """
    store: dict[str, torch.Tensor] = {}
    canonical: dict[tuple, str] = {}
    aliases: dict[str, str] = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"serialize: {name} is {type(t).__name__}, expected a tensor")
        key = _view_key(t)
        if key in canonical:
            aliases[name] = canonical[key]
            continue
        canonical[key] = name
        store[name] = t.detach().to("cpu", copy=True).contiguous()
    meta = dict(metadata)
    if aliases:
        meta["aliases"] = json.dumps(aliases)
    return save(store, metadata=meta)


def expand_aliases(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> dict[str, torch.Tensor]:
    """Add the names ``serialize`` stored as aliases (``metadata["aliases"]``) to ``tensors``."""
    for name, target in json.loads(metadata.pop("aliases", "{}")).items():
        tensors[name] = tensors[target]
    return tensors


def parse(data: bytes, path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors (aliases expanded) from the bytes of a safetensors file; ``path`` names it in errors.

    The header is an 8-byte little-endian length ``n``, then ``n`` bytes of JSON
    whose ``__metadata__`` holds the aliases.
    """
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        meta = header.get("__metadata__") or {}
        return expand_aliases(load(data), dict(meta))
    except Exception as e:  # struct, JSON and safetensors each raise their own errors
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
