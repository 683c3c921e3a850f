"""A whole stacked LSTM through the native kernel's wavefront ops, with its autograd.

:func:`lstm_stack_native` runs every layer and direction of an LSTM in one call of
``torch.ops.lstmlens_native.lstm_stack_forward`` (``wavefront.h``): one direction's layers as a
wavefront over chunks of steps, or a bidirectional layer's two directions at once, each chain on
its own thread. Its backward is ``lstm_stack_backward``, scheduled the same way. The results are
those of running the one-layer kernel layer by layer (``out`` (T, B, D*P), ``h_n`` (L*D, B, P),
``c_n`` (L*D, B, H)), the dropout between layers included: ``drops`` are the masks
``F.dropout`` multiplies by (``(T, B, D*P)``, one per layer boundary, or None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ...cells import CellSpec
from ..registry import Masks
from .abi import LSTM_SLOTS, lstm_config
from .functions import _keep, _needs_graph, _slot_list

__all__ = ["StackPlan", "lstm_stack_native"]


@dataclass(frozen=True)
class StackPlan:
    """What the ops need besides the tensors that get gradients (one per call)."""

    cfg: list[int]
    layers: int
    dirs: int
    chunks: int  # steps cut into this many pieces for the wavefront (1 with two directions)
    keep_h: list[Tensor | None]  # one per layer-direction
    keep_c: list[Tensor | None]
    rmask: list[Tensor | None]
    drops: list[Tensor | None]  # one per layer boundary
    rev: Tensor | None  # (T, B) step of each sequence read backwards, None: a plain flip

    def args(self) -> tuple:
        return (
            self.cfg,
            self.layers,
            self.dirs,
            self.chunks,
            self.keep_h,
            self.keep_c,
            self.rmask,
            self.drops,
            self.rev,
        )


class _StackTrain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan: StackPlan, x, h0, c0, *w):
        res = torch.ops.lstmlens_native.lstm_stack_forward(x, h0, c0, list(w), *plan.args(), True)
        ctx.plan, ctx.n_w = plan, len(w)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, h0, *w, *res[3:])
        return res[0], res[1], res[2]

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        x, h0, *rest = ctx.saved_tensors
        w, saved = rest[: ctx.n_w], rest[ctx.n_w :]
        dx, dh0, dc0, *dw = torch.ops.lstmlens_native.lstm_stack_backward(
            x, h0, w, *ctx.plan.args(), saved, d_out, d_hn, d_cn
        )
        return None, dx, dh0, dc0, *dw


def lstm_stack_native(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    params: Sequence[Mapping[str, Tensor]],
    spec: CellSpec,
    masks: Sequence[Masks],
    drops: Sequence[Tensor | None],
    rev: Tensor | None,
    dirs: int,
    chunks: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Every layer-direction of an LSTM: ``(out (T, B, D*P), h_n (L*D, B, P), c_n (L*D, B, H))``.

    ``params`` / ``masks``: one per layer-direction (``l * dirs + d``), the masks in each
    direction's own time order; ``drops``: one per layer boundary; ``rev``: as ``_Padding.rev_idx``.
    """
    layers = len(params) // dirs
    x, h0, c0 = x.contiguous(), h0.contiguous(), c0.contiguous()
    w: list[Tensor] = []
    for p in params:
        names = tuple(p)
        w += _slot_list(names, tuple(p[n] for n in names), LSTM_SLOTS, x)
    plan = StackPlan(
        lstm_config(spec, False),
        layers,
        dirs,
        chunks if dirs == 1 else 1,
        [_keep(m.keep_h, x) for m in masks],
        [_keep(m.keep_c, x) for m in masks],
        [_keep(m.rmask, x) for m in masks],
        [None if d is None else d.contiguous() for d in drops],
        rev,
    )
    if _needs_graph(x, h0, c0, *w):
        out, h_n, c_n = _StackTrain.apply(plan, x, h0, c0, *w)
        return out, h_n, c_n
    res = torch.ops.lstmlens_native.lstm_stack_forward(x, h0, c0, w, *plan.args(), False)
    return res[0], res[1], res[2]
