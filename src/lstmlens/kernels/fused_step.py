r"""One step of the fused LSTM, forward and backward, written into preallocated buffers.

:mod:`lstmlens.kernels.fused` walks these over time. Gate rows are in the internal order
[sigmoid gates..., g] (e.g. i, f, o, g) so the sigmoids run over one contiguous slice;
:class:`Layout` names the slices. Forward of step t (``a`` the pre-activations, written over
by the activations in ``G[t]``)::

    a   = XW_t + [LN](h_in W_hh^T) (+ s W_gate^T) (+ p_{i,f} * c)      h_in = h * rmask
    i, f, (o) = σ(a_i, a_f, (a_o)) ;  g = tanh(a_g)
    c'  = f*c + i*g   (cifg: c - i*c + i*g; no f: c + i*g)
    o   = σ(a_o + p_o * c')  (peephole on o: after c')
    y   = tanh([LN](c')) ;  h' = [W_hr](o * y) ;  h_t = lerp(h', h, k_h), c_t = lerp(c', c, k_c)

The backward equations are in :mod:`lstmlens.kernels.fused`'s docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..cells import LN_EPS, CellSpec

__all__ = ["Buffers", "Layout", "backward_step", "forward_step", "ln_bwd", "ln_fwd"]


def ln_fwd(x: Tensor) -> tuple[Tensor, Tensor]:
    """Normalise over the last dim (no affine part). Returns ``(x_hat, rstd)``, rstd (..., 1)."""
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    rstd = torch.rsqrt(var + LN_EPS)
    return (x - mean) * rstd, rstd


def ln_bwd(dxhat: Tensor, xhat: Tensor, rstd: Tensor) -> Tensor:
    """Gradient through ``x_hat = (x - mean) * rstd`` given ``d x_hat``."""
    return rstd * (
        dxhat - dxhat.mean(-1, keepdim=True) - xhat * (dxhat * xhat).mean(-1, keepdim=True)
    )


@dataclass(frozen=True)
class Layout:
    """Where each gate sits in the internal rows, and the variant's switches."""

    spec: CellSpec
    sig: dict[str, slice]  # sigmoid gate -> its columns
    g: slice  # the candidate's columns
    S: int  # width of the sigmoid part (nS * H)

    @classmethod
    def of(cls, spec: CellSpec) -> Layout:
        H, blocks = spec.hidden_size, spec.variant.sigmoid_blocks
        sig = {b: slice(k * H, (k + 1) * H) for k, b in enumerate(blocks)}
        S = len(blocks) * H
        return cls(spec, sig, slice(S, S + H), S)

    @property
    def o_peep(self) -> bool:
        """o looks at the new cell c', so its sigmoid waits for it."""
        return self.spec.variant.peepholes and self.spec.variant.has_o


class Buffers(NamedTuple):
    """Everything forward writes per step, (T, B, ...) each; the LN ones None without it."""

    G: Tensor  # gate activations, internal order (T, B, nG*H)
    out: Tensor  # h_t (T, B, P)
    C: Tensor  # carried cell states c_0..c_T (T+1, B, H)
    CN: Tensor  # new cell c' before the keep mask (a view of C[1:] without one)
    Y: Tensor  # output activation of (normalised) c' (T, B, H)
    RN: Tensor | None  # normalised recurrent projection (T, B, nG*H)
    rstd_r: Tensor | None  # (T, B, 1)
    CNn: Tensor | None  # normalised c' (T, B, H)
    rstd_c: Tensor | None  # (T, B, 1)

    @classmethod
    def allocate(cls, x: Tensor, XW: Tensor, c0: Tensor, spec: CellSpec, keep_c: bool) -> Buffers:
        T, B = x.shape[0], x.shape[1]
        H, P = spec.hidden_size, spec.state_size
        C = x.new_empty(T + 1, B, H)
        C[0] = c0
        ln = spec.layer_norm
        return cls(
            G=torch.empty_like(XW),
            out=x.new_empty(T, B, P),
            C=C,
            CN=x.new_empty(T, B, H) if keep_c else C[1:],
            Y=x.new_empty(T, B, H),
            RN=torch.empty_like(XW) if ln else None,
            rstd_r=x.new_empty(T, B, 1) if ln else None,
            CNn=x.new_empty(T, B, H) if ln else None,
            rstd_c=x.new_empty(T, B, 1) if ln else None,
        )


# -- forward -----------------------------------------------------------------------------------


def forward_step(
    t: int,
    h: Tensor,
    s: Tensor | None,
    XW: Tensor,
    buf: Buffers,
    p: Mapping[str, Tensor],
    W_hhT: Tensor,
    W_gT: Tensor | None,
    lay: Layout,
    keep_h: Tensor | None,
    keep_c: Tensor | None,
    rmask: Tensor | None,
) -> None:
    """Step ``t`` from ``h`` (B, P) and the gate state ``s`` (B, S): fills ``buf[...][t]``."""
    a = buf.G[t]
    _preactivations(t, a, h if rmask is None else h * rmask, s, XW, buf, p, W_hhT, W_gT, lay)
    cn = _cell(a, buf.C[t], buf.CN[t], lay)
    m = _output(t, a, cn, buf, p, lay)
    if keep_c is not None:
        torch.lerp(cn, buf.C[t], keep_c[t], out=buf.C[t + 1])
    if keep_h is not None:
        torch.lerp(m, h, keep_h[t], out=buf.out[t])
    else:
        buf.out[t] = m


def _preactivations(t, a, h_in, s, XW, buf, p, W_hhT, W_gT, lay: Layout) -> None:
    """``a = XW_t + [LN](h_in W_hh^T) (+ s W_gate^T) (+ p_{i,f} * c)``, into ``a``."""
    spec = lay.spec
    if spec.layer_norm:
        R = h_in @ W_hhT
        buf.RN[t], buf.rstd_r[t] = ln_fwd(R)
        torch.addcmul(XW[t], buf.RN[t], p["ln_weight_hh"], out=a)
    else:
        torch.addmm(XW[t], h_in, W_hhT, out=a)
    if s is not None:
        a[:, : lay.S].addmm_(s, W_gT)
    if spec.variant.peepholes:
        for b in ("i", "f"):
            if b in lay.sig:
                a[:, lay.sig[b]].addcmul_(p[f"peephole_{b}"], buf.C[t])


def _cell(a: Tensor, c: Tensor, cn: Tensor, lay: Layout) -> Tensor:
    """Activate i, f, (o) and g in place in ``a``; ``c' = f*c + i*g`` into ``cn``."""
    v, sig = lay.spec.variant, lay.sig
    last = sig["o"].start if lay.o_peep else lay.S  # o waits for c' when it peeps at it
    a[:, :last].sigmoid_()
    g = a[:, lay.g]
    if v.input_activation == "tanh":
        g.tanh_()
    i = a[:, sig["i"]] if v.has_i else None
    if v.has_f:
        torch.mul(a[:, sig["f"]], c, out=cn)
    elif v.coupled:  # f = 1 - i:  c' = c - i*c + i*g
        assert i is not None  # a coupled forget gate needs the input gate
        torch.addcmul(c, i, c, value=-1, out=cn)
    else:
        cn.copy_(c)
    if i is not None:
        cn.addcmul_(i, g)
    else:
        cn.add_(g)
    return cn


def _output(t: int, a: Tensor, cn: Tensor, buf: Buffers, p, lay: Layout) -> Tensor:
    """``o`` (peephole on c'), ``y = tanh([LN](c'))`` into ``Y[t]``; returns ``[W_hr](o*y)``."""
    spec, v = lay.spec, lay.spec.variant
    if lay.o_peep:
        a[:, lay.sig["o"]].addcmul_(p["peephole_o"], cn).sigmoid_()
    if spec.layer_norm:
        assert buf.CNn is not None and buf.rstd_c is not None  # allocated with layer norm
        buf.CNn[t], buf.rstd_c[t] = ln_fwd(cn)
        chat = torch.addcmul(p["ln_bias_c"], buf.CNn[t], p["ln_weight_c"])
    else:
        chat = cn
    y = buf.Y[t]
    if v.output_activation == "tanh":
        torch.tanh(chat, out=y)
    else:
        y.copy_(chat)
    m = y * a[:, lay.sig["o"]] if v.has_o else y
    return m @ p["weight_hr"].t() if spec.proj_size else m


# -- backward ----------------------------------------------------------------------------------


def backward_step(
    t: int,
    dhn: Tensor,
    dcn: Tensor,
    dc_keep: Tensor | None,
    ds: Tensor | None,
    dA: Tensor,
    buf: Buffers,
    p: Mapping[str, Tensor],
    grads: dict[str, Tensor],
    lay: Layout,
) -> Tensor:
    """Through step ``t``'s cell, given ``dh'`` (B, P) and ``dc'`` (B, H) after the keep masks
    and ``dc_keep``, the part of ``dc_t`` the keep mask carries straight to ``c_{t-1}``.

    Writes the pre-activation gradients into ``dA[t]``, adds the peephole and layer-norm gain
    gradients into ``grads``, and returns ``dc_{t-1}`` (the recurrent part, through ``W_hh``,
    is the caller's: it needs every step's ``dA`` at once for the weights).
    """
    da = dA[t]
    dm = dhn @ p["weight_hr"] if lay.spec.proj_size else dhn
    dcn = _output_backward(t, dm, dcn, ds, da, buf, p, grads, lay)
    return _cell_backward(t, dcn, dc_keep, ds, da, buf, p, grads, lay)


def _output_backward(t, dm, dcn, ds, da, buf: Buffers, p, grads, lay: Layout) -> Tensor:
    """``dc'`` including what flows back from h' through y (and o's peephole); fills ``da_o``."""
    spec, v, sig = lay.spec, lay.spec.variant, lay.sig
    gt, y = buf.G[t], buf.Y[t]
    o = gt[:, sig["o"]] if v.has_o else None
    dy = dm * o if o is not None else dm
    dchat = dy * (1 - y * y) if v.output_activation == "tanh" else dy
    if spec.layer_norm:
        assert buf.CNn is not None and buf.rstd_c is not None  # allocated with layer norm
        grads["ln_weight_c"] += (dchat * buf.CNn[t]).sum(0)
        grads["ln_bias_c"] += dchat.sum(0)
        dcn = dcn + ln_bwd(dchat * p["ln_weight_c"], buf.CNn[t], buf.rstd_c[t])
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
            grads["peephole_o"] += (da_o * buf.CN[t]).sum(0)
    return dcn


def _cell_backward(t, dcn, dc_keep, ds, da, buf: Buffers, p, grads, lay: Layout) -> Tensor:
    """Fills ``da_g``, ``da_i``, ``da_f``; returns
    ``dc_{t-1} = dc_keep + dc' * f + da_i * p_i + da_f * p_f``."""
    v, sig = lay.spec.variant, lay.sig
    gt, c = buf.G[t], buf.C[t]
    g = gt[:, lay.g]
    i = gt[:, sig["i"]] if v.has_i else None
    dg = dcn * i if i is not None else dcn
    if v.input_activation == "tanh":
        torch.mul(dg, 1 - g * g, out=da[:, lay.g])
    else:
        da[:, lay.g] = dg
    df = None
    if v.has_f or v.coupled:
        df = dcn * c
        if ds is not None and v.has_f:
            df = df + ds[:, sig["f"]]
    if v.has_f:
        f = gt[:, sig["f"]]
    elif v.coupled:
        assert i is not None  # a coupled forget gate needs the input gate
        f = 1 - i
    else:
        f = None
    dcp = dcn * f if f is not None else dcn
    dc_prev = dcp if dc_keep is None else dc_keep + dcp
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
        assert df is not None and f is not None  # both set for a forget gate
        da_f = da[:, sig["f"]]
        torch.mul(df, f * (1 - f), out=da_f)
        if v.peepholes:
            dc_prev = dc_prev + da_f * p["peephole_f"]
            grads["peephole_f"] += (da_f * c).sum(0)
    return dc_prev
