r"""The fused path for GRU and plain RNN layers: one autograd Function per layer-direction.

Same scheme as :mod:`lstmlens.kernels.fused`: the input projection of all steps in one matmul,
per step one recurrent matmul and the pointwise maths, a hand-derived backward.

GRU backward of one step (``h' = (1-z)*n + z*h``, ``n = tanh(a_n)``, ``a_n = x_n + r*(W_hn h + b_hn)``)::

    da_n = dh' * (1-z) * (1-n²)      da_z = dh' * (h-n) * z(1-z)      da_r = da_n * (W_hn h + b_hn) * r(1-r)
    dh   = dh' * z + [da_r, da_z, da_n * r] W_hh
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["gru_fused", "rnn_fused"]


class _GRUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, keep_h, W_ih, W_hh, b_ih, b_hh):
        T, B, I = x.shape
        H = W_hh.shape[1]
        XW = (
            torch.addmm(b_ih, x.reshape(T * B, I), W_ih.t())
            if b_ih is not None
            else (x.reshape(T * B, I) @ W_ih.t())
        )
        XW = XW.view(T, B, 3 * H)
        RZ = x.new_empty(T, B, 2 * H)  # r, z
        N = x.new_empty(T, B, H)  # candidate n
        HN = x.new_empty(T, B, H)  # W_hn h + b_hn
        out = x.new_empty(T, B, H)
        W_hhT = W_hh.t()
        h = h0
        for t in range(T):
            hw = torch.addmm(b_hh, h, W_hhT) if b_hh is not None else h @ W_hhT  # (B, 3H)
            torch.add(XW[t, :, : 2 * H], hw[:, : 2 * H], out=RZ[t]).sigmoid_()
            r, z = RZ[t, :, :H], RZ[t, :, H:]
            HN[t] = hw[:, 2 * H :]
            torch.addcmul(XW[t, :, 2 * H :], r, HN[t], out=N[t]).tanh_()
            hn = torch.lerp(h, N[t], 1 - z)  # (1-z)*n + z*h
            if keep_h is not None:
                torch.lerp(hn, h, keep_h[t], out=out[t])
            else:
                out[t] = hn
            h = out[t]
        ctx.save_for_backward(x, h0, out, RZ, N, HN, keep_h, W_ih, W_hh)
        ctx.has_bias = b_ih is not None
        return out, out[T - 1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn):
        x, h0, out, RZ, N, HN, keep_h, W_ih, W_hh = ctx.saved_tensors
        T, B, I = x.shape
        H = W_hh.shape[1]
        dh = d_hn.clone() if d_hn is not None else x.new_zeros(B, H)
        dXW = x.new_empty(T, B, 3 * H)  # d input pre-activations [r, z, n]
        dHW = x.new_empty(T, B, 3 * H)  # d recurrent pre-activations [r, z, n]
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            h_prev = h0 if t == 0 else out[t - 1]
            if keep_h is not None:
                dhn, dh_prev = dh * (1 - keep_h[t]), dh * keep_h[t]
            else:
                dhn, dh_prev = dh, 0
            r, z, n = RZ[t, :, :H], RZ[t, :, H:], N[t]
            da_n = dhn * (1 - z) * (1 - n * n)
            da_z = dhn * (h_prev - n) * z * (1 - z)
            da_r = da_n * HN[t] * r * (1 - r)
            dXW[t, :, :H], dXW[t, :, H : 2 * H], dXW[t, :, 2 * H :] = da_r, da_z, da_n
            dHW[t, :, :H], dHW[t, :, H : 2 * H] = da_r, da_z
            torch.mul(da_n, r, out=dHW[t, :, 2 * H :])
            dh = dh_prev + dhn * z + dHW[t] @ W_hh
        H_prev = torch.cat([h0.unsqueeze(0), out[:-1]]).reshape(T * B, H)
        dXW2, dHW2 = dXW.reshape(T * B, 3 * H), dHW.reshape(T * B, 3 * H)
        dx = (dXW2 @ W_ih).view(T, B, I)
        dW_ih = dXW2.t() @ x.reshape(T * B, I)
        dW_hh = dHW2.t() @ H_prev
        db_ih = dXW2.sum(0) if ctx.has_bias else None
        db_hh = dHW2.sum(0) if ctx.has_bias else None
        return dx, dh, None, dW_ih, dW_hh, db_ih, db_hh


def gru_fused(
    x: Tensor, h0: Tensor, p: Mapping[str, Tensor], keep_h: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`~lstmlens.kernels.reference.gru_reference` (without recording)."""
    return _GRUFunction.apply(
        x, h0, keep_h, p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh")
    )


class _RNNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, relu, x, h0, keep_h, W_ih, W_hh, b_ih, b_hh):
        T, B, I = x.shape
        H = W_hh.shape[1]
        XW = x.reshape(T * B, I) @ W_ih.t()
        if b_ih is not None:
            XW = XW + (b_ih + b_hh)
        XW = XW.view(T, B, H)
        A = x.new_empty(T, B, H)  # activations act(a_t)
        out = x.new_empty(T, B, H)
        W_hhT = W_hh.t()
        h = h0
        for t in range(T):
            a = torch.addmm(XW[t], h, W_hhT, out=A[t])
            a.relu_() if relu else a.tanh_()
            if keep_h is not None:
                torch.lerp(a, h, keep_h[t], out=out[t])
            else:
                out[t] = a
            h = out[t]
        ctx.relu, ctx.has_bias = relu, b_ih is not None
        ctx.save_for_backward(x, h0, out, A, keep_h, W_ih, W_hh)
        return out, out[T - 1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn):
        x, h0, out, A, keep_h, W_ih, W_hh = ctx.saved_tensors
        T, B, I = x.shape
        H = W_hh.shape[1]
        dh = d_hn.clone() if d_hn is not None else x.new_zeros(B, H)
        dA = torch.empty_like(A)
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            if keep_h is not None:
                dhn, dh_prev = dh * (1 - keep_h[t]), dh * keep_h[t]
            else:
                dhn, dh_prev = dh, 0
            a = A[t]
            torch.mul(dhn, (a > 0).to(a.dtype) if ctx.relu else 1 - a * a, out=dA[t])
            dh = dh_prev + dA[t] @ W_hh
        H_prev = torch.cat([h0.unsqueeze(0), out[:-1]]).reshape(T * B, H)
        dA2 = dA.reshape(T * B, H)
        dx = (dA2 @ W_ih).view(T, B, I)
        db = dA2.sum(0) if ctx.has_bias else None
        return (
            None,
            dx,
            dh,
            None,
            dA2.t() @ x.reshape(T * B, I),
            dA2.t() @ H_prev,
            db,
            None if db is None else db.clone(),
        )


def rnn_fused(
    x: Tensor,
    h0: Tensor,
    p: Mapping[str, Tensor],
    nonlinearity: str = "tanh",
    keep_h: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`~lstmlens.kernels.reference.rnn_reference` (without recording)."""
    return _RNNFunction.apply(
        nonlinearity == "relu",
        x,
        h0,
        keep_h,
        p["weight_ih"],
        p["weight_hh"],
        p.get("bias_ih"),
        p.get("bias_hh"),
    )
