"""Files of a run folder that may come from elsewhere: opened without following links, bounded.

A run folder can be copied from another machine, unpacked from an archive or
edited by hand, so nothing in it is trusted:

* every run file is opened with ``O_NOFOLLOW``: a ``config.json``, a weights
  file or a ``train.log`` that is a symbolic link is refused (ELOOP), so a
  planted link can neither feed us another file nor make us append to one
  outside the folder; the file must be a regular file (no FIFO, no device);
* the safetensors *header* is read on its own (8-byte little-endian length
  ``n``, then ``n`` bytes of JSON) and checked against the file size, so the
  shapes of the tensors are known, and a truncated file is refused, before a
  single tensor is read or a model built;
* sizes are capped: a header above :data:`MAX_HEADER_BYTES`, a JSON file above
  :data:`MAX_JSON_BYTES`.

Every failure is a ``ValueError`` whose one-line message names the file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_JSON_BYTES",
    "TensorInfo",
    "append_text",
    "is_regular_file",
    "open_nofollow",
    "read_bytes",
    "read_header",
    "read_json",
]

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
MAX_JSON_BYTES = 64_000_000  # a config.json or checkpoint.json; real ones are a few kB
#: Bytes per element of the dtypes a safetensors header may name.
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a safetensors header: element type and shape (no data is read)."""

    dtype: str
    shape: tuple[int, ...]


def open_nofollow(path: str | os.PathLike, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """``os.open(path, flags | O_NOFOLLOW)`` for a regular file; returns the descriptor.

    A symbolic link, a folder, a FIFO or a device raises ``ValueError`` naming
    ``path``; other ``OSError`` s (missing file, no permission) propagate.
    """
    try:
        fd = os.open(path, flags | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as e:
        if e.errno == errno.ELOOP or (e.errno == errno.EMLINK and _NOFOLLOW):
            raise ValueError(f"{path}: is a symbolic link; run files are never followed") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{path}: not a regular file")
    os.set_blocking(fd, True)
    return fd


def _open_run_file(path: str | os.PathLike) -> int:
    """:func:`open_nofollow`, its errors as one-line ``ValueError``s naming ``path``."""
    try:
        return open_nofollow(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror})") from None


def read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (not through a link); ``limit`` caps the size."""
    fd = _open_run_file(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise ValueError(f"{path}: {size} bytes, more than the {limit} a run file may hold")
        return f.read()


def read_json(path: str | os.PathLike) -> Any:
    """A JSON run file: not through a link, at most :data:`MAX_JSON_BYTES`, valid UTF-8 JSON."""
    data = read_bytes(path, MAX_JSON_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def is_regular_file(path: Any) -> bool:
    """True when ``path`` is a string naming a regular file (a hint from a run folder: no FIFO,
    device or folder, whose reading could block or never end)."""
    try:
        return isinstance(path, str) and stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to ``path`` (created 0666 & ~umask), never through a symbolic link."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(text)


def read_header(path: str | os.PathLike) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares, by name, checked against the file's size.

    Reads only the header: ``u64 n`` (little-endian), ``n`` bytes of JSON mapping
    each name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
    into the data that follows), plus an optional ``"__metadata__"``. Refused:
    a header longer than the file or than :data:`MAX_HEADER_BYTES`, an unknown
    dtype, a negative or non-integer dimension, offsets outside the file, a byte
    count that is not ``prod(shape) * itemsize``.
    """
    fd = _open_run_file(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path}: not a readable safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", prefix)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(
                f"{path}: not a readable safetensors file (truncated: a header of {n} bytes)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{path}: not a readable safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a readable safetensors file (header is not a JSON object)")
    data_size = size - 8 - n
    return {
        name: _entry(path, name, entry, data_size)
        for name, entry in header.items()
        if name != "__metadata__"
    }


def _entry(path: str | os.PathLike, name: str, entry: Any, data_size: int) -> TensorInfo:
    """One header entry as a :class:`TensorInfo`, after checking it against the data's size."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{path}: tensor {name!r} {why}")

    if not isinstance(entry, dict):
        raise bad("has no description")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise bad(f"has an unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise bad("has a malformed shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_natural, offsets))):
        raise bad("has malformed data offsets")
    begin, end = offsets
    if not begin <= end <= data_size:
        raise bad(f"lies beyond the end of the file (truncated: {data_size} data bytes)")
    if end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise bad(f"has {end - begin} bytes for shape {shape} of {dtype}")
    return TensorInfo(dtype, tuple(shape))


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
