"""How a whole sequence is run: ``reference`` (the per-step oracle) and ``fused`` (hand-derived backward)."""

from . import fused, reference

__all__ = ["fused", "reference"]
