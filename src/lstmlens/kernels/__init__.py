"""How a whole sequence is run: ``reference`` (the per-step oracle) and ``fused`` (hand-derived backward)."""

from . import fused, fused_gru_rnn, reference

__all__ = ["fused", "fused_gru_rnn", "reference"]
