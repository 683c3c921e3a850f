"""The kernel registry: which backends exist, which one runs a given input, and why.

A backend runs ONE layer-direction of an LSTM, GRU or RNN over a whole time-major sequence
(``x`` (T, B, I)). Each backend module defines a class with the :class:`Backend` protocol and
``kernels/__init__.py`` registers it in one line::

    register(Fused(), priority=10)
    register(Native(), priority=20, fallback="fused")

``"auto"`` takes the registered backend of highest priority that is available on this machine
and :meth:`~Backend.supports` the input (device, dtype, configuration). An explicit choice
that is unavailable (no compiler, a failed build) runs its ``fallback`` instead and says so
once, in one warning line; an explicit choice that is available but does not support the
input raises a ``ValueError`` naming the backend and the reason: no silent slow path.
:func:`backends` lists everything registered, with availability and the reason any is not.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..cells import CellSpec

__all__ = [
    "AUTO",
    "Backend",
    "BackendInfo",
    "Masks",
    "Support",
    "backends",
    "get",
    "names",
    "register",
    "select",
    "unregister",
]

AUTO = "auto"

#: called once per step with the gates of that step, e.g. {"input": (B, H), ...}
Recorder = Callable[[dict[str, Tensor]], None]


@dataclass(frozen=True)
class Masks:
    """Per-step masks a layer hands to a backend (all optional).

    ``keep_h`` (T, B, P or 1) / ``keep_c`` (T, B, H or 1): per step, how much of the previous
    state is kept instead of the new one, ``h_t = keep*h_{t-1} + (1-keep)*h'``: 1 on the padded
    steps of shorter sequences, zoneout's Bernoulli draws in training. ``rmask`` (B, P): the
    recurrent-dropout mask, one per sequence, applied to ``h`` on its way into ``W_hh``.
    GRU and RNN layers use ``keep_h`` only.
    """

    keep_h: Tensor | None = None
    keep_c: Tensor | None = None
    rmask: Tensor | None = None


NO_MASKS = Masks()


class Support(NamedTuple):
    """Whether a backend can run something, and if not, why (one line)."""

    ok: bool
    reason: str = ""


@runtime_checkable
class Backend(Protocol):
    """How a whole sequence is run. ``mode`` is ``"LSTM"``, ``"GRU"`` or ``"RNN"``;
    ``spec`` is the LSTM's :class:`~lstmlens.cells.CellSpec` (None for GRU and RNN)."""

    name: str
    records: bool  # can hand every step's gates to a recorder (the lens)

    def available(self) -> Support:
        """Whether this backend can run at all on this machine (built, loaded, ...)."""
        ...

    def supports(
        self, mode: str, device: torch.device, dtype: torch.dtype, spec: CellSpec | None
    ) -> Support:
        """Whether it runs this input; the reason when it does not."""
        ...

    def lstm(
        self,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        p: Mapping[str, Tensor],
        spec: CellSpec,
        masks: Masks = NO_MASKS,
        recorder: Recorder | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(out (T, B, P), h_T (B, P), c_T (B, H))``."""
        ...

    def gru(
        self,
        x: Tensor,
        h0: Tensor,
        p: Mapping[str, Tensor],
        masks: Masks = NO_MASKS,
        recorder: Recorder | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(out (T, B, H), h_T (B, H))``."""
        ...

    def rnn(
        self,
        x: Tensor,
        h0: Tensor,
        p: Mapping[str, Tensor],
        nonlinearity: str,
        masks: Masks = NO_MASKS,
        recorder: Recorder | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(out (T, B, H), h_T (B, H))``."""
        ...


@dataclass(frozen=True)
class BackendInfo:
    """One line of :func:`backends`: a registered backend and whether it can run here."""

    name: str
    available: bool
    reason: str  # why not, when not available ("" otherwise)
    priority: int  # ``auto`` tries higher first
    fallback: str | None = None  # what runs instead when this one is unavailable


@dataclass
class _Entry:
    backend: Backend
    priority: int
    fallback: str | None


_REGISTRY: dict[str, _Entry] = {}
_ORDER: tuple[str, ...] = ()  # names by priority, highest first (kept on every change)
_warned: set[str] = set()  # backends whose fallback was announced (once per process)


def register(backend: Backend, *, priority: int = 0, fallback: str | None = None) -> Backend:
    """Add (or replace) a backend under ``backend.name``; ``auto`` tries higher priorities first."""
    if not isinstance(backend, Backend):
        raise TypeError(f"register: {type(backend).__name__} does not have the Backend protocol")
    if backend.name == AUTO or not backend.name:
        raise ValueError(f"register: a backend cannot be named {backend.name!r}")
    _REGISTRY[backend.name] = _Entry(backend, priority, fallback)
    _reorder()
    return backend


def unregister(name: str) -> None:
    """Remove a registered backend (tests registering a toy one clean up with this)."""
    if name not in _REGISTRY:
        raise KeyError(f"unregister: no backend named {name!r}; registered: {names()}")
    del _REGISTRY[name]
    _warned.discard(name)
    _reorder()


def _reorder() -> None:
    global _ORDER
    ranked = sorted(_REGISTRY.items(), key=lambda kv: -kv[1].priority)  # stable: ties keep order
    _ORDER = tuple(name for name, _ in ranked)


def names() -> tuple[str, ...]:
    """The registered backends, highest priority (``auto``'s first try) first."""
    return _ORDER


def get(name: str) -> Backend:
    """The backend registered as ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"no backend named {name!r}; registered: {', '.join(names())}")
    return _REGISTRY[name].backend


def backends() -> list[BackendInfo]:
    """Every registered backend in ``auto``'s order, with availability and the reason if not.

    Asking whether the native kernel is available builds it the first time (cached after).
    """
    out = []
    for name in names():
        entry = _REGISTRY[name]
        ok, reason = entry.backend.available()
        out.append(BackendInfo(name, ok, "" if ok else reason, entry.priority, entry.fallback))
    return out


def select(
    choice: str,
    mode: str,
    device: torch.device,
    dtype: torch.dtype,
    spec: CellSpec | None = None,
    recording: bool = False,
    owner: str = "",
) -> Backend:
    """The backend that runs this input: ``choice`` (or its fallback), or ``auto``'s pick.

    ``recording``: the lens wants every step's gates; only a backend that ``records`` can
    give them, so a choice that does not record gives way to ``auto``'s pick among those that do.
    """
    who = f"{owner}: " if owner else ""
    if choice != AUTO and choice not in _REGISTRY:
        raise ValueError(f"{who}backend must be one of {(AUTO, *names())}, got {choice!r}")
    if choice != AUTO and not (recording and not _REGISTRY[choice].backend.records):
        backend = _available_or_fallback(choice, who)
        ok, reason = backend.supports(mode, device, dtype, spec)
        if not ok:
            raise ValueError(f"{who}backend {backend.name!r} cannot run this input: {reason}")
        return backend
    refused = []
    for name in names():
        backend = _REGISTRY[name].backend
        if recording and not backend.records:
            continue
        ok, reason = backend.available()
        if not ok and _REGISTRY[name].fallback is not None:
            _announce(name, reason)
        if ok:
            ok, reason = backend.supports(mode, device, dtype, spec)
        if ok:
            return backend
        refused.append(f"{name}: {reason}")
    raise ValueError(f"{who}no registered backend runs this input ({'; '.join(refused)})")


def _available_or_fallback(name: str, who: str = "") -> Backend:
    """``name``'s backend, or its fallback (announced once) when it cannot run on this machine."""
    seen = []
    while True:
        entry = _REGISTRY[name]
        ok, reason = entry.backend.available()
        if ok:
            return entry.backend
        seen.append(name)
        if entry.fallback is None or entry.fallback in seen or entry.fallback not in _REGISTRY:
            raise ValueError(f"{who}backend {name!r} is unavailable here: {reason}")
        _announce(name, reason)
        name = entry.fallback


def _announce(name: str, reason: str) -> None:
    """One warning line per process when a backend cannot run here (not when turned off)."""
    fallback = _REGISTRY[name].fallback
    if name in _warned or reason.startswith("disabled"):
        return
    _warned.add(name)
    warnings.warn(
        f"lstmlens: {name} kernel unavailable ({reason}); using the {fallback} path",
        RuntimeWarning,
        stacklevel=6,
    )
