"""How a whole sequence is run: a registry of backends (see :mod:`.registry`).

``reference`` (the per-step oracle, which also records for the lens), ``fused`` (one autograd
Function per layer-direction with a hand-derived backward, pure PyTorch) and ``native`` (the
same scheme compiled in C++, CPU). Adding a backend is one module and one line here; so is a schedule
(:mod:`.schedule`: how a stack's layer-directions are run, e.g. the native ``wavefront``).
"""

from . import fused, fused_gru_rnn, native, reference, registry, schedule
from .registry import Backend, BackendInfo, Masks, backends, register, select, unregister

registry.register(reference.Reference(), priority=0)
registry.register(fused.Fused(), priority=10)
registry.register(native.Native(), priority=20, fallback="fused")
schedule.register(native.Wavefront())  # whole stacks: layers and directions on threads

__all__ = [
    "Backend",
    "BackendInfo",
    "Masks",
    "backends",
    "fused",
    "fused_gru_rnn",
    "native",
    "reference",
    "register",
    "registry",
    "schedule",
    "select",
    "unregister",
]
