"""The compiled kernel as a registered backend: CPU, float32 / float64 (bf16 matmuls optional).

Availability is :func:`.loader.status`: the first question builds the library (about 30 s,
then cached per user; the loader says so in one line before compiling), asked through
:func:`.ops.ready`, which also registers the ops' fake and autograd implementations for
``torch.compile`` and ``torch.export``. When the kernel cannot
be had the registry runs this backend's fallback (``fused``) and says so once.
"""

from __future__ import annotations

import torch

from ...cells import CellSpec
from ..registry import NO_MASKS, Support
from . import loader
from .functions import bf16_kernel, bf16_requested, gru_native, lstm_native, rnn_native
from .ops import ready

__all__ = ["Native"]

DTYPES = (torch.float32, torch.float64)


class Native:
    """``torch.ops.lstmlens_native``: the fused scheme in C++, every LSTM variant and option."""

    name = "native"
    records = False

    def available(self) -> Support:
        if ready():  # (a constant to torch.compile: selection happens at trace time)
            return Support(True)
        return Support(False, loader.status().summary())

    def supports(
        self, mode: str, device: torch.device, dtype: torch.dtype, spec: CellSpec | None
    ) -> Support:
        if device.type != "cpu":
            return Support(False, f"the native kernel runs on CPU only, got device {device}")
        bf16_autocast = (
            dtype == torch.bfloat16 and mode == "LSTM" and bf16_requested(None) and bf16_kernel()
        )
        if dtype not in DTYPES and not bf16_autocast:
            return Support(False, f"the native kernel runs float32 and float64, got {dtype}")
        return Support(True)

    def lstm(self, x, h0, c0, p, spec, masks=NO_MASKS, recorder=None):
        return lstm_native(x, h0, c0, p, spec, masks.keep_h, masks.keep_c, masks.rmask)

    def gru(self, x, h0, p, masks=NO_MASKS, recorder=None):
        return gru_native(x, h0, p, masks.keep_h)

    def rnn(self, x, h0, p, nonlinearity, masks=NO_MASKS, recorder=None):
        return rnn_native(x, h0, p, nonlinearity, masks.keep_h)
