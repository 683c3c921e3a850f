"""The native kernel's entry points, with the contracts of the fused path.

:func:`lstm_native`, :func:`gru_native` and :func:`rnn_native` take and return exactly what
:func:`~lstmlens.kernels.fused.lstm_fused` and friends do (time-major ``x`` (T, B, I),
``h0`` (B, P), ``c0`` (B, H), keep masks (T, B, 1|units), ``rmask`` (B, P)). They run the
compiled kernel for float32 and float64 CPU tensors and refuse anything else with a
``ValueError``; a batch of zero sequences, where there is nothing to compute, goes through the
fused path. Falling back when the kernel cannot be built is the registry's business
(:mod:`lstmlens.kernels.registry`), not theirs: called without the kernel they raise.

They call the ``torch.ops.lstmlens_native`` operators (C++ kernels and autograd kernels, fake
shapes registered in :mod:`.ops`), so the same code runs eagerly, under ``torch.compile`` (no
graph break) and under ``torch.export``. With gradients off (``torch.no_grad()``,
``inference_mode``, or nothing requiring grad) the kernel saves nothing for a backward pass.

Precision (LSTM): ``precision="bf16"``, or CPU autocast to bfloat16 when ``precision`` is None,
runs every matmul of forward and backward with bfloat16 operands and float32 accumulation
(MKL: AMX / AVX512-BF16); weights, states, gates and all outputs stay float32.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ...cells import CellSpec
from ...precision import check_precision
from .. import fused, fused_gru_rnn
from .abi import LSTM_SLOTS, SIMPLE_SLOTS, lstm_config
from .loader import status
from .ops import ready

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
    res = ops.lstm_forward(x, h0, c0, w, cfg, keep_h, keep_c, rmask, train)
    return res[0], res[1], res[2]


def _simple(relu, ops, x, h0, p, keep_h):
    x, h0, keep_h = x.contiguous(), h0.contiguous(), _keep(keep_h, x)
    names = tuple(n for n in SIMPLE_SLOTS if n in p)
    weights = tuple(p[n] for n in names)
    w = _slot_list(names, weights, SIMPLE_SLOTS, x)
    train = _needs_graph(x, h0, *weights)
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
