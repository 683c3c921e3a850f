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

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..cells import LN_EPS, CellSpec
from .fused_gru_rnn import gru_fused, rnn_fused
from .reference import lstm_reference
from .registry import NO_MASKS, Support

__all__ = ["Fused", "lstm_fused"]


# -- layer-norm helpers (no affine part; gains are applied by the caller) ----------------------


def _ln_fwd(x: Tensor) -> tuple[Tensor, Tensor]:
    """Normalise over the last dim. Returns ``(x_hat, rstd)`` with rstd shaped (..., 1)."""
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    rstd = torch.rsqrt(var + LN_EPS)
    return (x - mean) * rstd, rstd


def _ln_bwd(dxhat: Tensor, xhat: Tensor, rstd: Tensor) -> Tensor:
    """Gradient through ``x_hat = (x - mean) * rstd`` given ``d x_hat``."""
    return rstd * (
        dxhat - dxhat.mean(-1, keepdim=True) - xhat * (dxhat * xhat).mean(-1, keepdim=True)
    )


def _order(spec: CellSpec) -> list[int]:
    """Block permutation from the variant's (i, f, g, o) order to the internal [sigmoids..., g]."""
    blocks = spec.variant.blocks
    internal = [b for b in blocks if b != "g"] + ["g"]
    return [blocks.index(b) for b in internal]


_ROW_PERMUTED = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "ln_weight_ih", "ln_weight_hh")


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, names, x, h0, c0, keep_h, keep_c, rmask, *weights):  # type: ignore[override]
        p = dict(zip(names, weights))
        v, H, P = spec.variant, spec.hidden_size, spec.state_size
        T, B, I = x.shape
        nS = len(v.sigmoid_blocks)
        S = nS * H  # width of the sigmoid part
        sig = {b: slice(k * H, (k + 1) * H) for k, b in enumerate(v.sigmoid_blocks)}
        gsl = slice(S, S + H)
        tanh_in = v.input_activation == "tanh"
        tanh_out = v.output_activation == "tanh"
        o_peep = v.peepholes and v.has_o

        W_ih, W_hh = p["weight_ih"], p["weight_hh"]
        XW = x.reshape(T * B, I) @ W_ih.t()  # (T*B, nG*H)
        XN = rstd_x = None
        if spec.layer_norm:
            XN, rstd_x = _ln_fwd(XW)
            XW = XN * p["ln_weight_ih"]
        if spec.bias:
            XW = XW + (p["bias_ih"] + p["bias_hh"])
        XW = XW.view(T, B, W_ih.shape[0])  # (T, B, nG*H)

        G = torch.empty_like(XW)  # gate activations, internal order
        out = x.new_empty(T, B, P)
        C = x.new_empty(T + 1, B, H)  # carried cell states c_0..c_T
        C[0] = c0
        CN = C[1:] if keep_c is None else x.new_empty(T, B, H)  # new cell c' before keep
        Y = x.new_empty(T, B, H)  # output activation of (normalised) c'
        RN = rstd_r = CNn = rstd_c = None
        if spec.layer_norm:
            RN, rstd_r = torch.empty_like(XW), x.new_empty(T, B, 1)
            CNn, rstd_c = x.new_empty(T, B, H), x.new_empty(T, B, 1)
        W_hhT = W_hh.t()
        W_gT = p["weight_gate"].t() if v.full_gate_recurrence else None
        s = x.new_zeros(B, S) if v.full_gate_recurrence else None
        h = h0
        for t in range(T):
            h_in = h if rmask is None else h * rmask
            a = G[t]
            if spec.layer_norm:
                R = h_in @ W_hhT
                RN[t], rstd_r[t] = _ln_fwd(R)
                torch.addcmul(XW[t], RN[t], p["ln_weight_hh"], out=a)
            else:
                torch.addmm(XW[t], h_in, W_hhT, out=a)
            if s is not None:
                a[:, :S].addmm_(s, W_gT)
            c = C[t]
            if v.peepholes:
                for b in ("i", "f"):
                    if b in sig:
                        a[:, sig[b]].addcmul_(p[f"peephole_{b}"], c)
            # sigmoids: all at once unless o needs the new cell first (peephole on o)
            last = sig["o"].start if o_peep else S
            a[:, :last].sigmoid_()
            g = a[:, gsl]
            if tanh_in:
                g.tanh_()
            i = a[:, sig["i"]] if v.has_i else None
            f = a[:, sig["f"]] if v.has_f else None
            cn = CN[t]
            if f is not None:
                torch.mul(f, c, out=cn)
            elif v.coupled:  # f = 1 - i:  c' = c - i*c + i*g
                torch.addcmul(c, i, c, value=-1, out=cn)
            else:
                cn.copy_(c)
            if i is not None:
                cn.addcmul_(i, g)
            else:
                cn.add_(g)
            if o_peep:
                a_o = a[:, sig["o"]]
                a_o.addcmul_(p["peephole_o"], cn).sigmoid_()
            if spec.layer_norm:
                CNn[t], rstd_c[t] = _ln_fwd(cn)
                chat = torch.addcmul(p["ln_bias_c"], CNn[t], p["ln_weight_c"])
            else:
                chat = cn
            y = Y[t]
            if tanh_out:
                torch.tanh(chat, out=y)
            else:
                y.copy_(chat)
            m = y * a[:, sig["o"]] if v.has_o else y
            if spec.proj_size:
                m = m @ p["weight_hr"].t()
            if keep_c is not None:
                torch.lerp(cn, c, keep_c[t], out=C[t + 1])
            if keep_h is not None:
                torch.lerp(m, h, keep_h[t], out=out[t])
            else:
                out[t] = m
            h = out[t]
            if s is not None:
                s = a[:, :S]

        ctx.spec, ctx.names = spec, names
        ctx.save_for_backward(
            x,
            h0,
            out,
            C,
            CN if keep_c is not None else None,
            G,
            Y,
            keep_h,
            keep_c,
            rmask,
            XN,
            rstd_x,
            RN,
            rstd_r,
            CNn,
            rstd_c,
            *weights,
        )
        return out, out[T - 1].clone(), C[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn, d_cn):  # type: ignore[override]
        spec, names = ctx.spec, ctx.names
        (
            x,
            h0,
            out,
            C,
            CN,
            G,
            Y,
            keep_h,
            keep_c,
            rmask,
            XN,
            rstd_x,
            RN,
            rstd_r,
            CNn,
            rstd_c,
            *weights,
        ) = ctx.saved_tensors
        p = dict(zip(names, weights))
        v, H, P = spec.variant, spec.hidden_size, spec.state_size
        T, B, I = x.shape
        nS = len(v.sigmoid_blocks)
        S = nS * H
        sig = {b: slice(k * H, (k + 1) * H) for k, b in enumerate(v.sigmoid_blocks)}
        gsl = slice(S, S + H)
        if CN is None:
            CN = C[1:]
        W_hh = p["weight_hh"]
        W_hr = p.get("weight_hr")
        W_g = p.get("weight_gate")
        grads: dict[str, Tensor] = {n: torch.zeros_like(w) for n, w in p.items()}

        dh = d_hn.clone() if d_hn is not None else x.new_zeros(B, P)
        dc = d_cn.clone() if d_cn is not None else x.new_zeros(B, H)
        ds = x.new_zeros(B, S) if v.full_gate_recurrence else None
        dA = torch.empty_like(G)  # d pre-activations, internal order
        dR = torch.empty_like(G) if spec.layer_norm else dA  # d (h_in @ W_hh^T)
        dHN = x.new_empty(T, B, P) if spec.proj_size else None
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            if keep_h is not None:
                dhn, dh_prev = dh * (1 - keep_h[t]), dh * keep_h[t]
            else:
                dhn, dh_prev = dh, None
            if keep_c is not None:
                dcn, dc_prev = dc * (1 - keep_c[t]), dc * keep_c[t]
            else:
                dcn, dc_prev = dc, None
            if dHN is not None:
                dHN[t] = dhn
                dm = dhn @ W_hr
            else:
                dm = dhn
            gt, da, y, c = G[t], dA[t], Y[t], C[t]
            o = gt[:, sig["o"]] if v.has_o else None
            dy = dm * o if o is not None else dm
            dchat = dy * (1 - y * y) if v.output_activation == "tanh" else dy
            if spec.layer_norm:
                grads["ln_weight_c"] += (dchat * CNn[t]).sum(0)
                grads["ln_bias_c"] += dchat.sum(0)
                dcn = dcn + _ln_bwd(dchat * p["ln_weight_c"], CNn[t], rstd_c[t])
            else:
                dcn = dcn + dchat
            if o is not None:
                do = dm * y
                if ds is not None:
                    do = do + ds[:, sig["o"]]
                da_o = da[:, sig["o"]]
                torch.mul(do, o * (1 - o), out=da_o)
                if v.peepholes:
                    dcn = dcn + da_o * p["peephole_o"]
                    grads["peephole_o"] += (da_o * CN[t]).sum(0)
            g = gt[:, gsl]
            i = gt[:, sig["i"]] if v.has_i else None
            dg = dcn * i if i is not None else dcn
            if v.input_activation == "tanh":
                torch.mul(dg, 1 - g * g, out=da[:, gsl])
            else:
                da[:, gsl] = dg
            df = None
            if v.has_f or v.coupled:
                df = dcn * c
                if ds is not None and v.has_f:
                    df = df + ds[:, sig["f"]]
            if v.has_f:
                f = gt[:, sig["f"]]
            elif v.coupled:
                f = 1 - i
            else:
                f = None
            dcp = dcn * f if f is not None else dcn
            dc_prev = dcp if dc_prev is None else dc_prev + dcp
            if i is not None:
                di = dcn * g
                if ds is not None:
                    di = di + ds[:, sig["i"]]
                if v.coupled:
                    di = di - df
                da_i = da[:, sig["i"]]
                torch.mul(di, i * (1 - i), out=da_i)
                if v.peepholes:
                    dc_prev = dc_prev + da_i * p["peephole_i"]
                    grads["peephole_i"] += (da_i * c).sum(0)
            if v.has_f:
                da_f = da[:, sig["f"]]
                torch.mul(df, f * (1 - f), out=da_f)
                if v.peepholes:
                    dc_prev = dc_prev + da_f * p["peephole_f"]
                    grads["peephole_f"] += (da_f * c).sum(0)
            if ds is not None:
                ds = da[:, :S] @ W_g
            if spec.layer_norm:
                grads["ln_weight_hh"] += (da * RN[t]).sum(0)
                dR[t] = _ln_bwd(da * p["ln_weight_hh"], RN[t], rstd_r[t])
            dh_in = dR[t] @ W_hh
            if rmask is not None:
                dh_in = dh_in * rmask
            dh = dh_in if dh_prev is None else dh_prev + dh_in
            dc = dc_prev

        # weight gradients of all steps at once
        H_prev = torch.cat([h0.unsqueeze(0), out[:-1]])  # (T, B, P)
        H_in = H_prev if rmask is None else H_prev * rmask
        grads["weight_hh"] = dR.reshape(T * B, -1).t() @ H_in.reshape(T * B, P)
        if spec.bias:
            db = dA.sum((0, 1))
            grads["bias_ih"], grads["bias_hh"] = db, db.clone()
        if spec.layer_norm:
            grads["ln_weight_ih"] = (dA.reshape(T * B, -1) * XN).sum(0)
            dX = _ln_bwd(dA.reshape(T * B, -1) * p["ln_weight_ih"], XN, rstd_x)
        else:
            dX = dA.reshape(T * B, -1)
        dx = (dX @ p["weight_ih"]).view(T, B, I)
        grads["weight_ih"] = dX.t() @ x.reshape(T * B, I)
        if dHN is not None:
            M = Y * G[:, :, sig["o"]] if v.has_o else Y  # (T, B, H)
            grads["weight_hr"] = dHN.reshape(T * B, P).t() @ M.reshape(T * B, H)
        if v.full_gate_recurrence:
            S_prev = torch.cat([x.new_zeros(1, B, S), G[:-1, :, :S]])  # (T, B, S)
            grads["weight_gate"] = dA[:, :, :S].reshape(T * B, S).t() @ S_prev.reshape(T * B, S)
        return (None, None, dx, dh, dc, None, None, None, *(grads[n] for n in names))


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
        return lstm_fused(x, h0, c0, p, spec, masks.keep_h, masks.keep_c, masks.rmask)

    def gru(self, x, h0, p, masks=NO_MASKS, recorder=None):
        return gru_fused(x, h0, p, masks.keep_h)

    def rnn(self, x, h0, p, nonlinearity, masks=NO_MASKS, recorder=None):
        return rnn_fused(x, h0, p, nonlinearity, masks.keep_h)
