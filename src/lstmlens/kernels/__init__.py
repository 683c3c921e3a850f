"""How a whole sequence is run: a registry of backends (see :mod:`.registry`).

``reference`` (the per-step oracle, which also records for the lens), ``fused`` (one autograd
Function per layer-direction with a hand-derived backward, pure PyTorch) and ``native`` (the
same scheme compiled in C++, CPU). Adding a backend is one module and one line here.
"""

from . import fused, fused_gru_rnn, native, reference, registry
from .registry import Backend, BackendInfo, Masks, backends, register, select, unregister

registry.register(reference.Reference(), priority=0)
registry.register(fused.Fused(), priority=10)
registry.register(native.Native(), priority=20, fallback="fused")

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
    "select",
    "unregister",
]
