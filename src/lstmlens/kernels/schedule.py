"""How the layer-directions of a stack are scheduled: a registry beside the backends'.

A backend (:mod:`.registry`) runs ONE layer-direction over a sequence; a schedule runs them all:

* ``"sequential"``: layer after layer, direction after direction, each on the chosen backend
  (:meth:`RecurrentBase._stack <lstmlens.recurrent.RecurrentBase._stack>`). Runs everything.
* ``"wavefront"`` (:mod:`.native.wavefront`): the native kernel runs the layers of a stack as
  a wavefront over time and the two directions of a bidirectional layer at once, each chain on
  its own thread. LSTM on the ``native`` backend, CPU, float32/float64.

``"auto"`` takes the first registered schedule that supports the input and, by its own measured
rule (:meth:`Schedule.helps`), is faster for it; ``sequential`` is always last and always
helps. An explicit choice that cannot run the input raises a ``ValueError`` naming the schedule
and the reason. The layer says which ran in ``last_schedule``; ``LSTM(..., schedule=...)``
(or setting ``layer.schedule``) switches.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from .registry import AUTO, Backend, Support

__all__ = ["Schedule", "names", "register", "select"]


@runtime_checkable
class Schedule(Protocol):
    """How a layer's stack of layer-directions runs (``layer``: a RecurrentBase)."""

    name: str

    def supports(self, layer: Any, kernel: Backend, x: Tensor, recording: bool) -> Support:
        """Whether it runs this input on this backend; the reason when it does not."""
        ...

    def helps(self, layer: Any, x: Tensor) -> bool:
        """``auto``'s rule: whether it is faster than running the layers one by one here."""
        ...

    def run(
        self, layer: Any, kernel: Backend, x: Tensor, states0: list[Tensor], pad: Any
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``(output (T, B, D*H_out), (h_n[, c_n]))`` from time-major ``x`` (T, B, I)."""
        ...


class Sequential:
    """Layer after layer, direction after direction: the layer's own loop."""

    name = "sequential"

    def supports(self, layer, kernel, x, recording) -> Support:
        return Support(True)

    def helps(self, layer, x) -> bool:
        return True

    def run(self, layer, kernel, x, states0, pad):
        return layer._stack(kernel, x, states0, pad)


_SCHEDULES: dict[str, Schedule] = {}
_SEQUENTIAL = Sequential()


def register(schedule: Schedule) -> Schedule:
    """Add (or replace) a schedule; ``auto`` tries them in registration order, sequential last."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"register: {type(schedule).__name__} does not have the Schedule protocol")
    if schedule.name in (AUTO, _SEQUENTIAL.name) or not schedule.name:
        raise ValueError(f"register: a schedule cannot be named {schedule.name!r}")
    _SCHEDULES[schedule.name] = schedule
    return schedule


def names() -> tuple[str, ...]:
    """The schedules ``auto`` tries, in order (``sequential`` last)."""
    return (*_SCHEDULES, _SEQUENTIAL.name)


def _get(name: str) -> Schedule:
    return _SEQUENTIAL if name == _SEQUENTIAL.name else _SCHEDULES[name]


def select(
    choice: str, layer: Any, kernel: Backend, x: Tensor, recording: bool = False, owner: str = ""
) -> Schedule:
    """The schedule that runs this input: ``choice``, or ``auto``'s pick."""
    who = f"{owner}: " if owner else ""
    if choice != AUTO:
        if choice not in names():
            raise ValueError(f"{who}schedule must be one of {(AUTO, *names())}, got {choice!r}")
        schedule = _get(choice)
        ok, reason = schedule.supports(layer, kernel, x, recording)
        if not ok:
            raise ValueError(f"{who}schedule {choice!r} cannot run this input: {reason}")
        return schedule
    for name in _SCHEDULES:
        schedule = _SCHEDULES[name]
        if schedule.supports(layer, kernel, x, recording).ok and schedule.helps(layer, x):
            return schedule
    return _SEQUENTIAL
