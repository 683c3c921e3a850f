"""The native kernel as autograd Functions, with the contracts of the fused path.

:func:`lstm_native`, :func:`gru_native` and :func:`rnn_native` take and return exactly what
:func:`~lstmlens.kernels.fused.lstm_fused` and friends do (time-major ``x`` (T, B, I),
``h0`` (B, P), ``c0`` (B, H), keep masks (T, B, 1|units), ``rmask`` (B, P)). They run the
compiled kernel for float32 and float64 CPU tensors and refuse anything else with a
``ValueError``; a batch of zero sequences, where there is nothing to compute, goes through the
fused path. Falling back when the kernel cannot be built is the registry's business
(:mod:`lstmlens.kernels.registry`), not theirs: called without the kernel they raise.

With gradients off (``torch.no_grad()``, ``inference_mode``, or nothing requiring grad) the
kernel saves nothing for a backward pass.

Precision (LSTM): ``precision="bf16"``, or CPU autocast to bfloat16 when ``precision`` is None,
runs every matmul of forward and backward with bfloat16 operands and float32 accumulation
(MKL: AMX / AVX512-BF16); weights, states, gates and all outputs stay float32.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ...cells import CellSpec
from .. import fused, fused_gru_rnn
from .abi import LSTM_SAVED, LSTM_SLOTS, SIMPLE_SLOTS, lstm_config
from .loader import status

__all__ = ["bf16_requested", "gru_native", "lstm_native", "native_ops", "rnn_native"]


def native_ops():
    """``torch.ops.lstmlens_native`` when the kernel is loaded, else ``None``."""
    return torch.ops.lstmlens_native if status().ok else None


def _ops(owner: str, x: Tensor):
    """The kernel's operators for ``x``, or a one-line error saying why they cannot run it."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"{owner}: the native kernel runs float32/float64 CPU tensors, got {x.dtype} on {x.device}"
        )
    ops = native_ops()
    if ops is None:
        raise RuntimeError(f"{owner}: the native kernel is unavailable ({status().summary()})")
    return ops


def bf16_requested(precision: str | None) -> bool:
    """Whether the matmuls should run in bfloat16: asked for, or CPU autocast to bfloat16."""
    if precision not in (None, "fp32", "bf16"):
        raise ValueError(
            f"lstm_native: precision must be 'fp32', 'bf16' or None, got {precision!r}"
        )
    if precision is None:
        return (
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
    return precision == "bf16"


def _keep(k: Tensor | None, x: Tensor) -> Tensor | None:
    return None if k is None else k.to(x.dtype).contiguous()


def _needs_graph(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _slot_list(names: tuple[str, ...], weights: tuple[Tensor, ...], slots, x: Tensor):
    given = dict(zip(names, weights))
    empty = x.new_empty(0)
    return [given[n].contiguous() if n in given else empty for n in slots]


class _LSTMNative(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cfg, names, x, h0, c0, keep_h, keep_c, rmask, *weights):  # type: ignore[override]
        w = _slot_list(names, weights, LSTM_SLOTS, x)
        res = torch.ops.lstmlens_native.lstm_forward(x, h0, c0, w, cfg, keep_h, keep_c, rmask, True)
        ctx.cfg, ctx.names = cfg, names
        ctx.save_for_backward(x, h0, keep_h, keep_c, rmask, *res, *weights)
        return res[0], res[1], res[2]

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn, d_cn):  # type: ignore[override]
        x, h0, keep_h, keep_c, rmask, *rest = ctx.saved_tensors
        saved, weights = rest[: len(LSTM_SAVED)], rest[len(LSTM_SAVED) :]
        w = _slot_list(ctx.names, tuple(weights), LSTM_SLOTS, x)
        res = torch.ops.lstmlens_native.lstm_backward(
            x, h0, w, ctx.cfg, keep_h, keep_c, rmask, saved, d_out, d_hn, d_cn
        )
        dx, dh0, dc0, *grads = res
        by_name = dict(zip(LSTM_SLOTS, grads))
        return (None, None, dx, dh0, dc0, None, None, None, *(by_name[n] for n in ctx.names))


def lstm_native(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: Mapping[str, Tensor],
    spec: CellSpec,
    keep_h: Tensor | None = None,
    keep_c: Tensor | None = None,
    rmask: Tensor | None = None,
    precision: str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Same contract as :func:`~lstmlens.kernels.fused.lstm_fused`: ``(out (T,B,P), h_T, c_T)``.

    ``precision``: ``"fp32"``, ``"bf16"`` (bfloat16 matmuls, see the module docstring) or None
    (bf16 under CPU autocast to bfloat16, else fp32).
    """
    bf16 = bf16_requested(precision) and status().bf16
    if bf16 and x.dtype in (torch.float32, torch.bfloat16):
        # autocast may hand over bfloat16 activations: the kernel's tensors are float32
        x, h0, c0 = x.float(), h0.float(), c0.float()
    if x.shape[1] == 0:  # no sequences: nothing to compute, torch-shaped empty results
        return fused.lstm_fused(x, h0, c0, p, spec, keep_h, keep_c, rmask)
    ops = _ops("lstm_native", x)
    x, h0, c0 = x.contiguous(), h0.contiguous(), c0.contiguous()
    keep_h, keep_c, rmask = _keep(keep_h, x), _keep(keep_c, x), _keep(rmask, x)
    names = tuple(p)
    weights = tuple(p[n] for n in names)
    cfg = lstm_config(spec, bf16 and weights[0].dtype == torch.float32)
    if _needs_graph(x, h0, c0, *weights):
        out, h, c = _LSTMNative.apply(cfg, names, x, h0, c0, keep_h, keep_c, rmask, *weights)
        return out, h, c
    w = _slot_list(names, weights, LSTM_SLOTS, x)
    out, h, c = ops.lstm_forward(x, h0, c0, w, cfg, keep_h, keep_c, rmask, False)
    return out, h, c


class _SimpleNative(torch.autograd.Function):
    """GRU (``relu`` None) or Elman RNN (``relu`` True/False) over a whole sequence."""

    @staticmethod
    def forward(ctx, relu, names, x, h0, keep_h, *weights):  # type: ignore[override]
        w = _slot_list(names, weights, SIMPLE_SLOTS, x)
        ops = torch.ops.lstmlens_native
        if relu is None:
            res = ops.gru_forward(x, h0, w, keep_h, True)
        else:
            res = ops.rnn_forward(x, h0, w, keep_h, relu, True)
        ctx.relu, ctx.names = relu, names
        ctx.save_for_backward(x, h0, keep_h, *weights, *res)
        ctx.n_weights = len(weights)
        return res[0], res[1]

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn):  # type: ignore[override]
        x, h0, keep_h, *rest = ctx.saved_tensors
        weights, saved = rest[: ctx.n_weights], rest[ctx.n_weights :]
        w = _slot_list(ctx.names, tuple(weights), SIMPLE_SLOTS, x)
        ops = torch.ops.lstmlens_native
        if ctx.relu is None:
            res = ops.gru_backward(x, h0, w, keep_h, saved, d_out, d_hn)
        else:
            res = ops.rnn_backward(x, h0, w, keep_h, ctx.relu, saved, d_out, d_hn)
        dx, dh0, *grads = res
        by_name = dict(zip(SIMPLE_SLOTS, grads))
        return (None, None, dx, dh0, None, *(by_name[n] for n in ctx.names))


def _simple(relu, ops, x, h0, p, keep_h):
    x, h0, keep_h = x.contiguous(), h0.contiguous(), _keep(keep_h, x)
    names = tuple(n for n in SIMPLE_SLOTS if n in p)
    weights = tuple(p[n] for n in names)
    if _needs_graph(x, h0, *weights):
        out, h = _SimpleNative.apply(relu, names, x, h0, keep_h, *weights)
        return out, h
    w = _slot_list(names, weights, SIMPLE_SLOTS, x)
    if relu is None:
        out, h = ops.gru_forward(x, h0, w, keep_h, False)
    else:
        out, h = ops.rnn_forward(x, h0, w, keep_h, relu, False)
    return out, h


def gru_native(
    x: Tensor, h0: Tensor, p: Mapping[str, Tensor], keep_h: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`~lstmlens.kernels.fused_gru_rnn.gru_fused`: ``(out, h_T)``."""
    if x.shape[1] == 0:  # no sequences: nothing to compute
        return fused_gru_rnn.gru_fused(x, h0, p, keep_h)
    return _simple(None, _ops("gru_native", x), x, h0, p, keep_h)


def rnn_native(
    x: Tensor,
    h0: Tensor,
    p: Mapping[str, Tensor],
    nonlinearity: str = "tanh",
    keep_h: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`~lstmlens.kernels.fused_gru_rnn.rnn_fused`: ``(out, h_T)``."""
    if x.shape[1] == 0:  # no sequences: nothing to compute
        return fused_gru_rnn.rnn_fused(x, h0, p, nonlinearity, keep_h)
    return _simple(nonlinearity == "relu", _ops("rnn_native", x), x, h0, p, keep_h)
