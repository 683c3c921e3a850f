"""Streaming inference: feed a recurrent model one observation at a time and keep its state.

    stream = lstmlens.Stream(model)          # an lstmlens.LSTM / GRU / RNN, one direction
    for x_t in observations:                 # x_t: (I,) or (B, I)
        y_t = stream.step(x_t)               # the top layer's h_t: (P,) or (B, P)
    stream.reset()                           # start a new sequence

Feeding x_1..x_T one by one gives exactly what ``model(x)`` gives for the whole sequence at
once (in eval mode): each step runs the cell equations of :mod:`lstmlens.cells` on the state
carried from the previous step, including full gate recurrence's gate state ``[i, f, o]``
(which ``model(x)`` restarts at zero on every call). No gradients are recorded; dropout,
zoneout and recurrent dropout are off, as in eval mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor

from .cells import gru_step, lstm_step, rnn_step
from .recurrent import RecurrentBase

if TYPE_CHECKING:
    from .layers import LSTM, RNN

__all__ = ["Stream"]


class Stream:
    """A stateful single-step runner around a unidirectional lstmlens recurrent model.

    Args:
        model: an :class:`lstmlens.LSTM`, :class:`lstmlens.GRU` or :class:`lstmlens.RNN`
            (not bidirectional: a reverse direction needs the future).
        state: optional initial state, as ``model`` takes ``hx``: ``(h_0, c_0)`` for an LSTM,
            ``h_0`` otherwise, each ``(num_layers, B, units)`` (or without B, unbatched).
    """

    def __init__(self, model: RecurrentBase, state: Any = None) -> None:
        if not isinstance(model, RecurrentBase):
            raise TypeError(
                f"Stream: expected an lstmlens LSTM, GRU or RNN, got {type(model).__name__}"
            )
        if model.bidirectional:
            raise ValueError("Stream: a bidirectional model cannot run step by step (it reads "
                             "the sequence backwards too); got bidirectional=True")  # fmt: skip
        self.model = model
        self._layers = [model.layer_parameters(k) for k in range(model.num_layers)]
        self._state: list[list[Tensor]] | None = None  # per layer: [h, c, s] / [h]
        self._unbatched = False
        self.reset(state)

    # -- state -----------------------------------------------------------------------------
    def reset(self, state: Any = None) -> None:
        """Start a new sequence: zeros (the default) or the given ``hx``."""
        self._state = None
        self._given = state

    @property
    def state(self) -> Any:
        """The current state in ``model``'s ``hx`` format (None before the first step)."""
        if self._state is None:
            return None
        sq = (lambda t: t.squeeze(1)) if self._unbatched else (lambda t: t)
        h = sq(torch.stack([s[0] for s in self._state]))
        if self.model.mode != "LSTM":
            return h
        return h, sq(torch.stack([s[1] for s in self._state]))

    def _start(self, B: int, like: Tensor) -> None:
        m = self.model
        L, H, P = m.num_layers, m.hidden_size, m.proj_size or m.hidden_size
        c: Tensor | None
        if self._given is None:
            h = like.new_zeros(L, B, P)
            c = like.new_zeros(L, B, H)
        else:
            given = self._given if m.mode == "LSTM" else (self._given,)
            given = tuple(t.unsqueeze(1) if self._unbatched else t for t in given)
            h, c = (given[0], given[1]) if m.mode == "LSTM" else (given[0], None)
            if h.shape[:2] != (L, B) or (c is not None and c.shape[:2] != (L, B)):
                raise ValueError(
                    f"Stream: the state must be (num_layers={L}, batch={B}, units), "
                    f"got {tuple(h.shape)}"
                )
        self._state = []
        for k in range(L):
            if m.mode != "LSTM":
                self._state.append([h[k]])
                continue
            assert c is not None  # an LSTM carries a cell state
            s = [h[k], c[k]]
            variant = cast("LSTM", m).variant
            if variant.full_gate_recurrence:
                s.append(like.new_zeros(B, len(variant.sigmoid_blocks) * H))
            self._state.append(s)

    # -- stepping ----------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, x: Tensor) -> Tensor:
        """One observation ``x`` (I,) or (B, I) -> the top layer's output (P,) or (B, P)."""
        m = self.model
        if not isinstance(x, Tensor) or x.dim() not in (1, 2) or x.shape[-1] != m.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"Stream.step: expected x of shape (I,) or (B, I) with I = "
                             f"{m.input_size}, got {got}")  # fmt: skip
        w = self._layers[0]["weight_ih"]
        x = x.to(dtype=w.dtype, device=w.device)
        if self._state is None:
            self._unbatched = x.dim() == 1
            self._start(1 if self._unbatched else x.shape[0], x)
        elif (x.dim() == 1) != self._unbatched or (
            x.dim() == 2 and x.shape[0] != self._state[0][0].shape[0]
        ):
            raise ValueError("Stream.step: the batch shape changed mid-sequence; call reset()")
        inp = x.unsqueeze(0) if x.dim() == 1 else x
        assert self._state is not None  # set by _start above
        for p, s in zip(self._layers, self._state):
            if m.mode == "LSTM":
                h, c, s_new, _ = lstm_step(
                    inp, s[0], s[1], p, cast("LSTM", m).spec, s[2] if len(s) > 2 else None
                )
                s[:] = [h, c] + ([s_new] if s_new is not None else [])
            elif m.mode == "GRU":
                h, _ = gru_step(inp, s[0], p)
                s[0] = h
            else:
                h = rnn_step(inp, s[0], p, cast("RNN", m).nonlinearity)
                s[0] = h
            inp = h
        return inp.squeeze(0) if self._unbatched else inp
