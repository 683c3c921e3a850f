r"""The fused path: one ``torch.autograd.Function`` per layer and direction.

Forward: the input projection of all T steps in ONE matmul, then per step one recurrent
matmul and the pointwise gate maths written into preallocated buffers. Backward: derived by
hand (below), walking back through time with only what the forward saved, and the weight
gradients of all steps as ONE matmul each at the end.

Inside the function the gate rows are in the order [sigmoid gates..., g] (e.g. i, f, o, g)
so the sigmoid runs over one contiguous slice; :func:`lstm_fused` permutes the rows of the
caller's (i, f, g, o) weights on the way in, and autograd permutes the gradients back.

Backward of one step (``d`` = gradient of the loss; ``*`` elementwise)::

    dh_t   = dout_t + dh_{t+1 -> t}
    dh'    = (1-k_h) * dh_t ;  dc' = (1-k_c) * dc_t        (keep masks: zoneout, padding)
    dm     = dh' W_hr  (projection)  or dh'
    do     = dm * y (+ ds_o) ;  dy = dm * o ;  dĉ = dy * (1 - y²)   (y = tanh(ĉ))
    dc'   += LN_c^T(dĉ) or dĉ ;   da_o = do * o(1-o) ;  dc' += da_o * p_o
    di     = dc' * g (+ ds_i) ;  df = dc' * c (+ ds_f) ;  dg = dc' * i ;  (cifg: di -= df)
    da_i   = di * i(1-i) ;  da_f = df * f(1-f) ;  da_g = dg * (1 - g²)
    dc_{t-1} = k_c * dc_t + dc' * f + da_i * p_i + da_f * p_f
    dR     = LN_hh^T(da) or da ;  dh_{t-1} = k_h * dh_t + (dR W_hh) * rmask
    ds_{t-1} = da_[i,f,o] W_gate                        (full gate recurrence)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..cells import CellSpec
from .fused_gru_rnn import gru_fused, rnn_fused
from .fused_step import Buffers, Layout, backward_step, forward_step, ln_bwd, ln_fwd
from .reference import lstm_reference
from .registry import NO_MASKS, Support

__all__ = ["Fused", "lstm_fused"]


def _order(spec: CellSpec) -> list[int]:
    """Block permutation from the variant's (i, f, g, o) order to the internal [sigmoids..., g]."""
    blocks = spec.variant.blocks
    internal = [b for b in blocks if b != "g"] + ["g"]
    return [blocks.index(b) for b in internal]


_ROW_PERMUTED = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "ln_weight_ih", "ln_weight_hh")


class _Saved(NamedTuple):
    """What forward keeps for backward besides the inputs and weights."""

    out: Tensor  # h_1..h_T (T, B, P)
    C: Tensor  # c_0..c_T (T+1, B, H)
    CN: Tensor | None  # c' before the keep mask (T, B, H); None: it is C[1:]
    G: Tensor  # gate activations, internal order (T, B, nG*H)
    Y: Tensor  # output activation of (normalised) c' (T, B, H)
    XN: Tensor | None  # layer norm: normalised input projection (T*B, nG*H)
    rstd_x: Tensor | None  # (T*B, 1)
    RN: Tensor | None  # normalised recurrent projection (T, B, nG*H)
    rstd_r: Tensor | None  # (T, B, 1)
    CNn: Tensor | None  # normalised c' (T, B, H)
    rstd_c: Tensor | None  # (T, B, 1)

    def buffers(self) -> Buffers:
        CN = self.C[1:] if self.CN is None else self.CN
        return Buffers(self.G, self.out, self.C, CN, self.Y, self.RN, self.rstd_r, self.CNn,
                       self.rstd_c)  # fmt: skip


def _input_projection(
    x: Tensor, p: Mapping[str, Tensor], spec: CellSpec
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``[LN](x W_ih^T) + b_ih + b_hh`` for all steps in one matmul: ``(XW (T, B, nG*H), XN, rstd)``."""
    T, B, I = x.shape
    W_ih = p["weight_ih"]
    XW = x.reshape(T * B, I) @ W_ih.t()  # (T*B, nG*H)
    XN = rstd_x = None
    if spec.layer_norm:
        XN, rstd_x = ln_fwd(XW)
        XW = XN * p["ln_weight_ih"]
    if spec.bias:
        XW = XW + (p["bias_ih"] + p["bias_hh"])
    return XW.view(T, B, W_ih.shape[0]), XN, rstd_x


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, names, x, h0, c0, keep_h, keep_c, rmask, *weights):
        p = dict(zip(names, weights))
        lay = Layout.of(spec)
        fgr = spec.variant.full_gate_recurrence
        XW, XN, rstd_x = _input_projection(x, p, spec)
        buf = Buffers.allocate(x, XW, c0, spec, keep_c is not None)
        W_hhT = p["weight_hh"].t()
        W_gT = p["weight_gate"].t() if fgr else None
        h, s = h0, x.new_zeros(x.shape[1], lay.S) if fgr else None
        for t in range(x.shape[0]):
            forward_step(t, h, s, XW, buf, p, W_hhT, W_gT, lay, keep_h, keep_c, rmask)
            h = buf.out[t]
            if s is not None:
                s = buf.G[t, :, : lay.S]

        saved = _Saved(buf.out, buf.C, buf.CN if keep_c is not None else None, buf.G, buf.Y, XN,
                       rstd_x, buf.RN, buf.rstd_r, buf.CNn, buf.rstd_c)  # fmt: skip
        ctx.spec, ctx.names = spec, names
        ctx.save_for_backward(x, h0, keep_h, keep_c, rmask, *saved, *weights)
        return buf.out, buf.out[-1].clone(), buf.C[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn, d_cn):
        spec, n = ctx.spec, len(_Saved._fields)
        x, h0, keep_h, keep_c, rmask, *rest = ctx.saved_tensors
        saved, p = _Saved(*rest[:n]), dict(zip(ctx.names, rest[n:]))
        lay, buf = Layout.of(spec), saved.buffers()
        T, B, _ = x.shape
        W_hh, W_g = p["weight_hh"], p.get("weight_gate")
        grads: dict[str, Tensor] = {name: torch.zeros_like(w) for name, w in p.items()}

        dh = d_hn.clone() if d_hn is not None else x.new_zeros(B, spec.state_size)
        dc = d_cn.clone() if d_cn is not None else x.new_zeros(B, spec.hidden_size)
        ds = x.new_zeros(B, lay.S) if W_g is not None else None
        dA = torch.empty_like(saved.G)  # d pre-activations, internal order
        dR = torch.empty_like(saved.G) if spec.layer_norm else dA  # d (h_in @ W_hh^T)
        dHN = x.new_empty(T, B, spec.state_size) if spec.proj_size else None
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            dhn, dh_keep = _split(dh, keep_h, t)
            dcn, dc_keep = _split(dc, keep_c, t)
            if dHN is not None:
                dHN[t] = dhn
            dc = backward_step(t, dhn, dcn, dc_keep, ds, dA, buf, p, grads, lay)
            da = dA[t]
            if ds is not None:
                ds = da[:, : lay.S] @ W_g
            if spec.layer_norm:
                grads["ln_weight_hh"] += (da * saved.RN[t]).sum(0)
                dR[t] = ln_bwd(da * p["ln_weight_hh"], saved.RN[t], saved.rstd_r[t])
            dh_in = dR[t] @ W_hh
            if rmask is not None:
                dh_in = dh_in * rmask
            dh = dh_in if dh_keep is None else dh_keep + dh_in

        _weight_grads(grads, x, h0, rmask, saved, dA, dR, dHN, p, lay)
        dx = grads.pop("_x")
        return (None, None, dx, dh, dc, None, None, None, *(grads[name] for name in ctx.names))


def _split(d: Tensor, keep: Tensor | None, t: int) -> tuple[Tensor, Tensor | None]:
    """A state gradient split by step ``t``'s keep mask: ``(to the new state, to the old)``."""
    if keep is None:
        return d, None
    return d * (1 - keep[t]), d * keep[t]


def _weight_grads(grads, x, h0, rmask, saved: _Saved, dA, dR, dHN, p, lay: Layout) -> None:
    """The matmul weight gradients of all steps at once (and ``dx``, under ``"_x"``)."""
    spec, v = lay.spec, lay.spec.variant
    T, B, I = x.shape
    H, P, S = spec.hidden_size, spec.state_size, lay.S
    H_prev = torch.cat([h0.unsqueeze(0), saved.out[:-1]])  # (T, B, P)
    H_in = H_prev if rmask is None else H_prev * rmask
    grads["weight_hh"] = dR.reshape(T * B, -1).t() @ H_in.reshape(T * B, P)
    if spec.bias:
        db = dA.sum((0, 1))
        grads["bias_ih"], grads["bias_hh"] = db, db.clone()
    if spec.layer_norm:
        assert saved.XN is not None and saved.rstd_x is not None  # saved with layer norm
        grads["ln_weight_ih"] = (dA.reshape(T * B, -1) * saved.XN).sum(0)
        dX = ln_bwd(dA.reshape(T * B, -1) * p["ln_weight_ih"], saved.XN, saved.rstd_x)
    else:
        dX = dA.reshape(T * B, -1)
    grads["_x"] = (dX @ p["weight_ih"]).view(T, B, I)
    grads["weight_ih"] = dX.t() @ x.reshape(T * B, I)
    if dHN is not None:
        M = saved.Y * saved.G[:, :, lay.sig["o"]] if v.has_o else saved.Y  # (T, B, H)
        grads["weight_hr"] = dHN.reshape(T * B, P).t() @ M.reshape(T * B, H)
    if v.full_gate_recurrence:
        S_prev = torch.cat([x.new_zeros(1, B, S), saved.G[:-1, :, :S]])  # (T, B, S)
        grads["weight_gate"] = dA[:, :, :S].reshape(T * B, S).t() @ S_prev.reshape(T * B, S)


def lstm_fused(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: Mapping[str, Tensor],
    spec: CellSpec,
    keep_h: Tensor | None = None,
    keep_c: Tensor | None = None,
    rmask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Same contract as :func:`~lstmlens.kernels.reference.lstm_reference` (without recording)."""
    if x.shape[1] == 0:  # no sequences: the reference loop gives the empty results and graph
        return lstm_reference(x, h0, c0, p, spec, keep_h, keep_c, rmask)
    order = _order(spec)
    H = spec.hidden_size
    params = dict(p)
    if order != sorted(order):
        idx = torch.cat([torch.arange(k * H, (k + 1) * H, device=x.device) for k in order])
        for n in _ROW_PERMUTED:
            if n in params:
                params[n] = params[n].index_select(0, idx)
    names = tuple(params)
    return _LSTMFunction.apply(
        spec, names, x, h0, c0, keep_h, keep_c, rmask, *(params[n] for n in names)
    )


class Fused:
    """The fused autograd Functions as a registered backend: pure PyTorch, any device."""

    name = "fused"
    records = False

    def available(self) -> Support:
        return Support(True)

    def supports(
        self, mode: str, device: torch.device, dtype: torch.dtype, spec: CellSpec | None
    ) -> Support:
        return Support(True)

    def lstm(self, x, h0, c0, p, spec, masks=NO_MASKS, recorder=None):
        if torch.compiler.is_compiling():
            return _traceable("LSTM", x, spec).lstm(x, h0, c0, p, spec, masks)
        return lstm_fused(x, h0, c0, p, spec, masks.keep_h, masks.keep_c, masks.rmask)

    def gru(self, x, h0, p, masks=NO_MASKS, recorder=None):
        if torch.compiler.is_compiling():
            return _traceable("GRU", x).gru(x, h0, p, masks)
        return gru_fused(x, h0, p, masks.keep_h)

    def rnn(self, x, h0, p, nonlinearity, masks=NO_MASKS, recorder=None):
        if torch.compiler.is_compiling():
            return _traceable("RNN", x).rnn(x, h0, p, nonlinearity, masks)
        return rnn_fused(x, h0, p, nonlinearity, masks.keep_h)


def _traceable(mode: str, x: Tensor, spec: CellSpec | None = None):
    """What runs the fused scheme under ``torch.compile``, which cannot trace its in-place
    (``out=``) backward: the native kernel's custom op where it runs the input (the same
    scheme, compiled), else the reference loop (the same function, traced step by step)."""
    from . import native, reference

    kernel = native.Native()
    if kernel.available().ok and kernel.supports(mode, x.device, x.dtype, spec).ok:
        return kernel
    return reference.Reference()
