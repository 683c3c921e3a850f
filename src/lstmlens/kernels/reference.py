"""The reference path: a plain per-step loop over the cell, differentiated by autograd.

This is the oracle every fast path is tested against, and the path the lens records
through. Each function runs ONE layer in ONE direction over a whole (time-major) sequence.

Shapes (time-major): ``x`` (T, B, I); ``h0`` (B, P); ``c0`` (B, H); outputs (T, B, P).
``keep_h`` (T, B, P) / ``keep_c`` (T, B, H): per step, how much of the previous state is kept
instead of the new one (``h_t = keep*h_{t-1} + (1-keep)*h'``): 1 on padded steps of shorter
sequences, zoneout's Bernoulli masks in training, ``None`` when neither applies.
``rmask`` (B, P): the recurrent-dropout mask, one per sequence.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ..cells import CellSpec, gru_step, lstm_step, rnn_step
from .registry import NO_MASKS, Recorder, Support

__all__ = ["Recorder", "Reference", "gru_reference", "lstm_reference", "rnn_reference"]


def _keep(new: Tensor, old: Tensor, keep: Tensor | None) -> Tensor:
    """``keep*old + (1-keep)*new``."""
    return new if keep is None else torch.lerp(new, old, keep)


def lstm_reference(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: Mapping[str, Tensor],
    spec: CellSpec,
    keep_h: Tensor | None = None,
    keep_c: Tensor | None = None,
    rmask: Tensor | None = None,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run an LSTM layer-direction step by step. Returns ``(out (T,B,P), h_T, c_T)``."""
    h, c = h0, c0
    s = None
    if spec.variant.full_gate_recurrence:
        s = x.new_zeros(x.shape[1], len(spec.variant.sigmoid_blocks) * spec.hidden_size)
    outs = []
    for t in range(x.shape[0]):
        h_new, c_new, s, gates = lstm_step(x[t], h, c, p, spec, s, rmask)
        c = _keep(c_new, c, None if keep_c is None else keep_c[t])
        h = _keep(h_new, h, None if keep_h is None else keep_h[t])
        if recorder is not None:
            recorder({**gates, "cell": c, "hidden": h})
        outs.append(h)
    return torch.stack(outs), h, c


def gru_reference(
    x: Tensor,
    h0: Tensor,
    p: Mapping[str, Tensor],
    keep_h: Tensor | None = None,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor]:
    """Run a GRU layer-direction step by step. Returns ``(out (T,B,H), h_T)``."""
    h, outs = h0, []
    for t in range(x.shape[0]):
        h_new, gates = gru_step(x[t], h, p)
        h = _keep(h_new, h, None if keep_h is None else keep_h[t])
        if recorder is not None:
            recorder({**gates, "hidden": h})
        outs.append(h)
    return torch.stack(outs), h


def rnn_reference(
    x: Tensor,
    h0: Tensor,
    p: Mapping[str, Tensor],
    nonlinearity: str = "tanh",
    keep_h: Tensor | None = None,
    recorder: Recorder | None = None,
) -> tuple[Tensor, Tensor]:
    """Run an Elman RNN layer-direction step by step. Returns ``(out (T,B,H), h_T)``."""
    h, outs = h0, []
    for t in range(x.shape[0]):
        h = _keep(rnn_step(x[t], h, p, nonlinearity), h, None if keep_h is None else keep_h[t])
        if recorder is not None:
            recorder({"hidden": h})
        outs.append(h)
    return torch.stack(outs), h


class Reference:
    """The per-step loop as a registered backend: runs anywhere torch runs, and records."""

    name = "reference"
    records = True

    def available(self) -> Support:
        return Support(True)

    def supports(
        self, mode: str, device: torch.device, dtype: torch.dtype, spec: CellSpec | None
    ) -> Support:
        return Support(True)

    def lstm(self, x, h0, c0, p, spec, masks=NO_MASKS, recorder=None):
        return lstm_reference(x, h0, c0, p, spec, masks.keep_h, masks.keep_c, masks.rmask, recorder)

    def gru(self, x, h0, p, masks=NO_MASKS, recorder=None):
        return gru_reference(x, h0, p, masks.keep_h, recorder)

    def rnn(self, x, h0, p, nonlinearity, masks=NO_MASKS, recorder=None):
        return rnn_reference(x, h0, p, nonlinearity, masks.keep_h, recorder)
