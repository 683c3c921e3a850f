"""The native kernel's entry points, with the contracts of the fused path.

:func:`lstm_native`, :func:`gru_native` and :func:`rnn_native` take and return exactly what
:func:`~lstmlens.kernels.fused.lstm_fused` and friends do (time-major ``x`` (T, B, I),
``h0`` (B, P), ``c0`` (B, H), keep masks (T, B, 1|units), ``rmask`` (B, P)). They run the
compiled kernel for float32 and float64 CPU tensors and refuse anything else with a
``ValueError``; a batch of zero sequences, where there is nothing to compute, goes through the
fused path. Falling back when the kernel cannot be built is the registry's business
(:mod:`lstmlens.kernels.registry`), not theirs: called without the kernel they raise.

They call the ``torch.ops.lstmlens_native`` operators, whose fake shapes and autograd formulas
are registered in :mod:`.ops`, so the same code runs eagerly, under ``torch.compile`` (no graph
break) and under ``torch.export``. With gradients off (``torch.no_grad()``, ``inference_mode``,
or nothing requiring grad) the kernel saves nothing for a backward pass.

Precision (LSTM): ``precision="bf16"``, or CPU autocast to bfloat16 when ``precision`` is None,
runs every matmul of forward and backward with bfloat16 operands and float32 accumulation
(MKL: AMX / AVX512-BF16); weights, states, gates and all outputs stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import torch
from torch import Tensor

from ...cells import CellSpec
from ...precision import check_precision
from .. import fused, fused_gru_rnn
from .abi import LSTM_SLOTS, SIMPLE_SLOTS, lstm_config
from .loader import status
from .ops import (
    gru_backward,
    gru_setup,
    lstm_backward,
    lstm_setup,
    ready,
    rnn_backward,
    rnn_setup,
)

__all__ = ["bf16_requested", "gru_native", "lstm_native", "native_ops", "rnn_native"]


def native_ops():
    """``torch.ops.lstmlens_native`` when the kernel is loaded, else ``None``."""
    return torch.ops.lstmlens_native if ready() else None


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


@torch.compiler.assume_constant_result
def bf16_kernel() -> bool:
    """Whether the loaded kernel has bfloat16 matmuls (a constant to ``torch.compile``)."""
    return status().bf16


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


#: torch (2.13) has no public way to call an operator below its autograd kernel. Under
#: ``torch.no_grad`` the dispatcher still runs the Python autograd kernel that
#: ``torch.library.register_autograd`` installs (it checks grad mode, then redispatches: tens of
#: microseconds a call); ``torch.inference_mode`` skips it but makes every output an inference
#: tensor, which autograd-recorded code refuses afterwards (``torch.nn.LSTM`` under no_grad
#: returns ordinary tensors); ``OpOverload.redispatch`` needs the private dispatch-key sets.
#: So eager inference and the training Function's forward use torch's own guard, the one
#: ``torch.library`` itself uses, where it exists, and the ordinary dispatch (same results,
#: slower) where a later torch drops it.
_BELOW_AUTOGRAD = getattr(torch._C, "_AutoDispatchBelowAutograd", None)


def _below_autograd(train: bool):
    """Eager inference calls the kernel directly, skipping the ops' Python autograd formula
    (tens of microseconds a call); traced code and training keep the ordinary dispatch."""
    if train or torch.compiler.is_compiling() or _BELOW_AUTOGRAD is None:
        return contextlib.nullcontext()
    return _BELOW_AUTOGRAD()


class _LSTMTrain(torch.autograd.Function):
    """Eager training: the op below autograd, then :mod:`.ops`' own setup and backward."""

    @staticmethod
    def forward(ctx, cfg, keep_h, keep_c, rmask, x, h0, c0, *w):
        with _below_autograd(False):  # (grad is off in here)
            res = torch.ops.lstmlens_native.lstm_forward(
                x, h0, c0, list(w), cfg, keep_h, keep_c, rmask, True
            )
        lstm_setup(ctx, (x, h0, c0, w, cfg, keep_h, keep_c, rmask, True), res)
        return tuple(res)

    @staticmethod
    def backward(ctx, *grads):
        dx, dh0, dc0, dw, *_ = lstm_backward(ctx, grads)
        return None, None, None, None, dx, dh0, dc0, *dw


class _SimpleTrain(torch.autograd.Function):
    """Eager training of a GRU (``relu`` None) or an RNN, as :class:`_LSTMTrain`."""

    @staticmethod
    def forward(ctx, relu, keep_h, x, h0, *w):
        ops = torch.ops.lstmlens_native
        with _below_autograd(False):  # (grad is off in here)
            if relu is None:
                res = ops.gru_forward(x, h0, list(w), keep_h, True)
            else:
                res = ops.rnn_forward(x, h0, list(w), keep_h, relu, True)
        if relu is None:
            gru_setup(ctx, (x, h0, w, keep_h, True), res)
        else:
            rnn_setup(ctx, (x, h0, w, keep_h, relu, True), res)
        return tuple(res)

    @staticmethod
    def backward(ctx, *grads):
        dx, dh0, dw, *_ = (gru_backward if ctx.relu is None else rnn_backward)(ctx, grads)
        return None, None, dx, dh0, *dw


def _slot_list(names: tuple[str, ...], weights: tuple[Tensor, ...], slots, x: Tensor):
    given = dict(zip(names, weights))
    empty = x.new_empty(0)
    return [given[n].contiguous() if n in given else empty for n in slots]


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
    if precision == "bf16":
        check_precision(precision, x.device, "lstm_native: precision 'bf16'")
    bf16 = bf16_requested(precision) and bf16_kernel()
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
    w = _slot_list(names, weights, LSTM_SLOTS, x)
    train = _needs_graph(x, h0, c0, *weights)
    if train and not torch.compiler.is_compiling():
        res = _LSTMTrain.apply(cfg, keep_h, keep_c, rmask, x, h0, c0, *w)
    else:
        with _below_autograd(train):
            res = ops.lstm_forward(x, h0, c0, w, cfg, keep_h, keep_c, rmask, train)
    return res[0], res[1], res[2]


def _simple(relu, ops, x, h0, p, keep_h):
    x, h0, keep_h = x.contiguous(), h0.contiguous(), _keep(keep_h, x)
    names = tuple(n for n in SIMPLE_SLOTS if n in p)
    weights = tuple(p[n] for n in names)
    w = _slot_list(names, weights, SIMPLE_SLOTS, x)
    train = _needs_graph(x, h0, *weights)
    if train and not torch.compiler.is_compiling():
        res = _SimpleTrain.apply(relu, keep_h, x, h0, *w)
        return res[0], res[1]
    with _below_autograd(train):
        if relu is None:
            res = ops.gru_forward(x, h0, w, keep_h, train)
        else:
            res = ops.rnn_forward(x, h0, w, keep_h, relu, train)
    return res[0], res[1]


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
