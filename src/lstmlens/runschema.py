"""A schema for a run folder's ``config.json``, checked against its weights before any model is built.

A run folder may come from elsewhere (:mod:`lstmlens.runfiles`), so its
``config.json`` is data to check, not a recipe to follow. :func:`check_run`

1. finds the run's kind (forecast, language, classify) from the config;
2. checks every field the loader uses against that kind's schema: its type
   (``true`` is not an integer, ``"no"`` is not a boolean), its range (sizes
   within :mod:`lstmlens.limits`), finite numbers (``Infinity`` is refused);
3. reads the header of ``model.safetensors`` (shapes only, no tensor data) and
   checks that the config's sizes are those of the stored tensors: the number
   of stacked layers (``{rnn}weight_ih_l{k}``), the input width (columns of
   ``weight_ih_l0``), the hidden size (columns of ``weight_hh_l0``, or of
   ``weight_hr_l0`` with a projection), the projection (rows of
   ``weight_hr_l0``), the directions (``_reverse`` tensors) and the head's and
   embedding's shapes.

So a model is built only when its tensors are on disk: ``num_layers: 1e6`` or
``hidden_size: 1e12`` is refused in microseconds instead of exhausting memory.
Every refusal is one ``ValueError`` line naming the file and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .runfiles import TensorInfo, read_header, read_json
from .variants import ACTIVATIONS, Variant, resolve_variant

__all__ = ["RunSchema", "SCHEMAS", "check_config", "check_run", "schema_of"]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


# ------------------------------------------------------------------ field specs


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (``None`` too when ``optional``)."""

    low: int
    high: int
    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if not _is_int(value) or not self.low <= value <= self.high:
            return f"an integer in [{self.low}, {self.high}]"
        return None


@dataclass(frozen=True)
class Real:
    """A finite number in ``[low, high]``, or ``[low, high)`` when ``open_high``."""

    low: float
    high: float
    open_high: bool = False

    def problem(self, value: Any) -> str | None:
        bracket = ")" if self.open_high else "]"
        expected = f"a finite number in [{self.low}, {self.high}{bracket}"
        if not _is_real(value) or value != value:
            return expected
        above = value >= self.high if self.open_high else value > self.high
        return expected if value < self.low or above else None


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false`` (not ``"no"``, not ``0``); ``null`` too when ``optional``."""

    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or (value is None and self.optional):
            return None
        return "true, false or null" if self.optional else "true or false"


@dataclass(frozen=True)
class Text:
    """A string, one of ``choices`` when given (``None`` too when ``optional``)."""

    choices: tuple[str, ...] = ()
    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or (self.choices and value not in self.choices):
            return f"one of {list(self.choices)}" if self.choices else "a string"
        return None


@dataclass(frozen=True)
class Reals:
    """A list of at most ``most`` finite numbers, each ``> 0`` when ``positive``, in (0, 1) when ``unit``."""

    most: int
    positive: bool = False
    unit: bool = False

    def problem(self, value: Any) -> str | None:
        what = "in (0, 1)" if self.unit else "> 0" if self.positive else "finite"
        if not isinstance(value, list) or len(value) > self.most:
            return f"a list of at most {self.most} numbers {what}"
        for x in value:
            if not _is_real(x) or x != x or abs(x) == float("inf"):
                return f"a list of finite numbers (holds {_show(x)})"
            if (self.positive and x <= 0) or (self.unit and not 0 < x < 1):
                return f"a list of numbers {what} (holds {_show(x)})"
        return None


@dataclass(frozen=True)
class Texts:
    """A list of ``least`` to ``most`` strings."""

    most: int
    least: int = 0

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list) or not self.least <= len(value) <= self.most:
            return f"a list of {self.least} to {self.most} strings"
        if not all(isinstance(x, str) for x in value):
            return "a list of strings"
        return None


@dataclass(frozen=True)
class VariantSpec:
    """A variant preset name, or an object of :class:`~lstmlens.Variant` fields."""

    def problem(self, value: Any) -> str | None:
        expected = "a variant preset name or an object of Variant fields"
        if isinstance(value, dict):
            defaults = {f.name: f.default for f in fields(Variant)}
            for key, given in value.items():
                if key not in defaults or type(given) is not type(defaults[key]):
                    return expected
                if isinstance(given, str) and given not in ACTIVATIONS:
                    return expected
            return None
        try:
            resolve_variant(value)
        except (TypeError, ValueError):
            return expected
        return None


Spec = Int | Real | Flag | Text | Reals | Texts | VariantSpec
_MISSING = object()


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


# ---------------------------------------------------------------- run schemas


@dataclass(frozen=True)
class RnnSizes:
    """What a config says the recurrent layers are; compared with the weights' header."""

    prefix: str  # the layers' name in the state dict, with its dot: "lstm."
    layers: int
    input: int
    hidden: int
    proj: int = 0
    directions: int = 1


@dataclass(frozen=True)
class RunSchema:
    """One kind of run: how to recognise its config, its fields, and the tensor shapes it implies.

    ``fields`` maps a dotted path (``"net.hidden_size"``) to its spec; ``optional``
    lists the paths that may be absent. ``sizes(config)`` (called on a checked
    config) returns the :class:`RnnSizes` and the exact shapes of other tensors where they
    are stored (a tied weight is stored once, under another name; ``None``: a tensor that
    must not be stored).
    """

    name: str
    matches: Callable[[Mapping[str, Any]], bool]
    fields: Mapping[str, Spec]
    sizes: Callable[[Mapping[str, Any]], tuple[RnnSizes, dict[str, tuple[int, ...] | None]]]
    optional: frozenset[str] = frozenset()
    consistent: Callable[[Mapping[str, Any]], str | None] = lambda c: None


SCHEMAS: dict[str, RunSchema] = {}


def register(schema: RunSchema) -> RunSchema:
    """Add ``schema`` to :data:`SCHEMAS` (one line per kind of run)."""
    SCHEMAS[schema.name] = schema
    return schema


def schema_of(config: Mapping[str, Any]) -> RunSchema | None:
    """The schema whose ``matches`` accepts ``config`` (``None`` for a kind without one)."""
    from . import runschemas  # noqa: F401  (registers the kinds of run on first use)

    return next((s for s in SCHEMAS.values() if s.matches(config)), None)


def check_config(config: Any, where: str | os.PathLike = CONFIG) -> RunSchema | None:
    """Check ``config`` against its kind's schema; ``ValueError`` naming ``where`` and the field."""
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(config).__name__}")
    schema = schema_of(config)
    if schema is None:
        return None
    for path, spec in schema.fields.items():
        value = _get(config, path)
        if value is _MISSING:
            if path in schema.optional:
                continue
            raise ValueError(f"{where}: incomplete {schema.name} config: {path} is missing")
        expected = spec.problem(value)
        if expected is not None:
            raise ValueError(f"{where}: {path} must be {expected}, got {_show(value)}")
    problem = schema.consistent(config)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    return schema


def check_run(run_dir: str | os.PathLike, config: Any = None) -> dict[str, Any]:
    """Check a run folder's ``config.json`` and its sizes against ``model.safetensors``' header.

    ``config`` is the parsed ``config.json`` when the caller has read it (else it
    is read here, never through a symbolic link). Returns the config. Raises
    ``ValueError`` with one line naming the file and the field.
    """
    run_dir = Path(run_dir)
    where = run_dir / CONFIG
    if config is None:
        config = read_json(where)
    header = read_header(run_dir / WEIGHTS)  # a missing or truncated file first
    schema = check_config(config, where)
    if schema is not None:
        rnn, shapes = schema.sizes(config)
        _compare(rnn, shapes, header, where, run_dir / WEIGHTS)
    return config


# ------------------------------------------------------------ against weights


def _stored_rnn(header: Mapping[str, TensorInfo], prefix: str, weights: Path) -> RnnSizes:
    """The recurrent layers' sizes as stored: see the module docstring."""
    pattern = re.compile(re.escape(prefix) + r"weight_ih_l(\d+)(_reverse)?")
    found = [m for m in map(pattern.fullmatch, header) if m]
    first = header.get(f"{prefix}weight_ih_l0")
    hh = header.get(f"{prefix}weight_hh_l0")
    if not found or first is None or hh is None or len(first.shape) != 2 or len(hh.shape) != 2:
        raise ValueError(f"{weights}: no recurrent layer {prefix}weight_ih_l0 / weight_hh_l0")
    hr = header.get(f"{prefix}weight_hr_l0")
    return RnnSizes(
        prefix=prefix,
        layers=len({m.group(1) for m in found}),
        input=first.shape[1],
        hidden=hr.shape[1] if hr is not None and len(hr.shape) == 2 else hh.shape[1],
        proj=hr.shape[0] if hr is not None and len(hr.shape) == 2 else 0,
        directions=2 if any(m.group(2) for m in found) else 1,
    )


_SIZE_WORDS = {
    "layers": "num_layers",
    "input": "the input size",
    "hidden": "hidden_size",
    "proj": "proj_size",
    "directions": "the number of directions",
}


def _compare(
    rnn: RnnSizes,
    shapes: Mapping[str, tuple[int, ...] | None],
    header: Mapping[str, TensorInfo],
    where: Path,
    weights: Path,
) -> None:
    stored = _stored_rnn(header, rnn.prefix, weights)
    for name, words in _SIZE_WORDS.items():
        said, held = getattr(rnn, name), getattr(stored, name)
        if said != held:
            raise ValueError(
                f"{where}: {words} is {said}, but {weights.name} holds {held} "
                f"({rnn.prefix}weight_*)"
            )
    for name, shape in shapes.items():
        info = header.get(name)
        if shape is None and info is not None:
            raise ValueError(f"{where}: implies no tensor {name}, but {weights.name} holds one")
        if shape is not None and info is not None and info.shape != shape:  # absent: an alias
            raise ValueError(
                f"{where}: implies {name} of shape {list(shape)}, but {weights.name} holds "
                f"{list(info.shape)}"
            )
