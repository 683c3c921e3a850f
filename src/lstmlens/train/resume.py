"""Resume that checks: a run continues only with the options it was started with.

A checkpoint records what the run *is* (its model, data and task options, and the
world size) as a JSON dictionary. A resume states what it asks for in the same
form, and :func:`check_resume` compares the two field by field, nested
dictionaries with dotted names (``data.path``), and refuses every difference in
one line::

    --resume: variant differs: checkpoint has 'niaf', command line asks 'noaf'

Fields in ``may_change`` (how long to train, how much to print) are not compared.
A field recorded on one side only counts as equal when the other side is
``None`` or ``False`` (an option added to lstmlens after the run started, left at
its "off" default); otherwise it is a difference like any other.

:func:`file_identity` names a data file by its absolute path and the SHA-256 of
its bytes, so that a file edited in place is told apart from the one trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_resume", "file_identity", "resume_differences"]

_ABSENT = object()


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


def _walk(saved: Any, asked: Any, prefix: str, skip: Collection[str], asker: str) -> Iterator[str]:
    if isinstance(saved, dict) and isinstance(asked, dict):
        for key in sorted(set(saved) | set(asked)):
            name = f"{prefix}{key}"
            if name in skip:
                continue
            yield from _walk(
                saved.get(key, _ABSENT), asked.get(key, _ABSENT), name + ".", skip, asker
            )
        return
    name = prefix[:-1]
    if saved is _ABSENT and asked in (None, False) or asked is _ABSENT and saved in (None, False):
        return
    if saved != asked:
        yield f"{name} differs: checkpoint has {_show(saved)}, {asker} asks {_show(asked)}"


def _show(value: Any) -> str:
    return "nothing (not recorded)" if value is _ABSENT else repr(value)


def resume_differences(
    saved: Mapping[str, Any],
    asked: Mapping[str, Any],
    may_change: Collection[str] = (),
    asker: str = "command line",
) -> list[str]:
    """Every field whose value differs, one phrase each (empty: the run may resume)."""
    return list(_walk(_plain(dict(saved)), _plain(dict(asked)), "", frozenset(may_change), asker))


def check_resume(
    saved: Mapping[str, Any],
    asked: Mapping[str, Any],
    may_change: Collection[str] = (),
    *,
    where: str = "--resume",
    asker: str = "command line",
) -> None:
    """Raise ``ValueError`` naming every field where ``asked`` differs from ``saved``.

    ``may_change`` lists (dotted) field names left out of the comparison;
    ``where`` starts the message and ``asker`` names who asks.
    """
    differences = resume_differences(saved, asked, may_change, asker)
    if differences:
        raise ValueError(f"{where}: " + "; ".join(differences))


def file_identity(path: str | os.PathLike) -> dict[str, str]:
    """``{"path": absolute path, "sha256": hex digest of the bytes}`` of a data file."""
    path = Path(path).resolve()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "sha256": digest.hexdigest()}
