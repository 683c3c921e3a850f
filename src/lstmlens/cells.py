r"""One step of an LSTM, GRU or plain RNN, written like the equations.

The LSTM step (gate order i, f, g, o as in ``torch.nn.LSTM``; ``σ`` is the logistic sigmoid)::

    i  = σ(W_ii x + b_ii + W_hi h + b_hi [+ p_i * c])          input gate     ("learn")
    f  = σ(W_if x + b_if + W_hf h + b_hf [+ p_f * c])          forget gate    ("forget")
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)                   candidate      (new memory)
    c' = f * c + i * g                                         cell state     ("remember")
    o  = σ(W_io x + b_io + W_ho h + b_ho [+ p_o * c'])         output gate    ("use")
    h' = o * tanh(c')            (with proj_size > 0: h' = W_hr (o * tanh(c')))

A :class:`~lstmlens.variants.Variant` removes gates (a removed gate is the constant 1),
couples f = 1 - i, adds peepholes ``[...]``, swaps an activation for the identity, or feeds
the gate activations of the previous step back into the gates (full gate recurrence,
``+ W_gate [i, f, o]_{t-1}``). With ``layer_norm`` (Ba et al. 2016) the two projections
``W_i* x`` and ``W_h* h`` are each normalised over all gate rows (with a gain) before the biases
are added, and the cell is normalised before the output activation: ``h' = o * tanh(LN(c'))``.

Shapes: ``x`` (B, I), ``h`` (B, P) with P = proj_size or H, ``c`` (B, H).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .variants import Variant, resolve_variant

__all__ = [
    "LN_EPS",
    "CellSpec",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "activation",
    "gate_preactivations",
    "gru_step",
    "lstm_param_shapes",
    "lstm_step",
    "rnn_step",
]

#: epsilon of every layer normalisation in lstmlens (the default of ``torch.nn.LayerNorm``).
LN_EPS = 1e-5


@dataclass(frozen=True)
class CellSpec:
    """Everything that fixes the maths of one LSTM layer-direction apart from its weights."""

    variant: Variant
    hidden_size: int  # H
    proj_size: int = 0  # P (0: no projection, h has H units)
    layer_norm: bool = False
    bias: bool = True

    @property
    def state_size(self) -> int:
        """Width of h: P when projected, else H."""
        return self.proj_size or self.hidden_size


def activation(x: Tensor, name: str) -> Tensor:
    """``tanh`` or ``identity``, by name (see :data:`lstmlens.variants.ACTIVATIONS`)."""
    return torch.tanh(x) if name == "tanh" else x


def lstm_param_shapes(spec: CellSpec, input_size: int) -> dict[str, tuple[int, ...]]:
    """Canonical parameter names of one LSTM layer-direction and their shapes, in torch's order.

    ``weight_ih`` (nG*H, I), ``weight_hh`` (nG*H, P), ``bias_ih``/``bias_hh`` (nG*H,),
    ``weight_hr`` (P, H), then lstmlens' own: ``peephole_{i,f,o}`` (H,),
    ``weight_gate`` (nS*H, nS*H), ``ln_weight_ih``/``ln_weight_hh`` (nG*H,), ``ln_weight_c``,
    ``ln_bias_c`` (H,). nG is the number of gate blocks, nS those through a sigmoid.
    """
    v, H, P = spec.variant, spec.hidden_size, spec.state_size
    rows = len(v.blocks) * H
    shapes: dict[str, tuple[int, ...]] = {"weight_ih": (rows, input_size), "weight_hh": (rows, P)}
    if spec.bias:
        shapes["bias_ih"] = (rows,)
        shapes["bias_hh"] = (rows,)
    if spec.proj_size:
        shapes["weight_hr"] = (P, H)
    for gate in v.peephole_gates:
        shapes[f"peephole_{gate}"] = (H,)
    if v.full_gate_recurrence:
        n = len(v.sigmoid_blocks) * H
        shapes["weight_gate"] = (n, n)
    if spec.layer_norm:
        shapes["ln_weight_ih"] = (rows,)
        shapes["ln_weight_hh"] = (rows,)
        shapes["ln_weight_c"] = (H,)
        shapes["ln_bias_c"] = (H,)
    return shapes


def lstm_step(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    p: Mapping[str, Tensor],
    spec: CellSpec,
    s: Tensor | None = None,
    rmask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, dict[str, Tensor]]:
    """One LSTM step. Returns ``(h', c', s', gates)``.

    ``s`` is the previous step's sigmoid-gate activations ``[i, f, o]`` (only with full gate
    recurrence; zeros before the first step), ``rmask`` a recurrent-dropout mask applied to
    ``h`` before ``W_hh`` (Gal & Ghahramani 2016). ``gates`` holds what the cell actually used:
    ``input, forget, candidate, output`` (removed gates as ones, cifg's forget as ``1 - i``).
    """
    v = spec.variant
    a = gate_preactivations(x, h, c, p, spec, s, rmask)  # i, f, g, o before their activations
    one = torch.ones_like(c)

    i = torch.sigmoid(a["i"]) if v.has_i else one
    f = torch.sigmoid(a["f"]) if v.has_f else (1 - i if v.coupled else one)
    g = activation(a["g"], v.input_activation)
    c_new = f * c + i * g
    o = torch.sigmoid(_peephole(a, "o", p, c_new, v.peepholes)) if v.has_o else one
    m = o * activation(_cell_norm(c_new, p, spec), v.output_activation)
    h_new = F.linear(m, p["weight_hr"]) if spec.proj_size else m

    gates = {"input": i, "forget": f, "candidate": g, "output": o}
    s_new = None
    if v.full_gate_recurrence:
        s_new = torch.cat([{"i": i, "f": f, "o": o}[b] for b in v.sigmoid_blocks], dim=-1)
    return h_new, c_new, s_new, gates


def gate_preactivations(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    p: Mapping[str, Tensor],
    spec: CellSpec,
    s: Tensor | None = None,
    rmask: Tensor | None = None,
) -> dict[str, Tensor]:
    """Each gate block's input before its activation, by name (``"i"``, ``"f"``, ``"g"``,
    ``"o"``; only the blocks the variant has), each (B, H)::

        a = [LN](W_ih x) + [LN](W_hh (h * rmask)) + b_ih + b_hh      split into the blocks
        a_{i,f,o} += W_gate [i, f, o]_{t-1}      (full gate recurrence)
        a_{i,f}   += p_{i,f} * c                 (peepholes; o's looks at c' in the step)
    """
    v, H = spec.variant, spec.hidden_size
    h_in = h if rmask is None else h * rmask
    wx = F.linear(x, p["weight_ih"])  # (B, nG*H)
    wh = F.linear(h_in, p["weight_hh"])  # (B, nG*H)
    if spec.layer_norm:
        wx = F.layer_norm(wx, wx.shape[-1:], p["ln_weight_ih"], None, LN_EPS)
        wh = F.layer_norm(wh, wh.shape[-1:], p["ln_weight_hh"], None, LN_EPS)
    a = wx + wh
    if spec.bias:
        a = a + p["bias_ih"] + p["bias_hh"]
    pre = dict(zip(v.blocks, a.split(H, dim=-1)))  # gate name -> (B, H) pre-activation
    if v.full_gate_recurrence:
        assert s is not None
        rec = F.linear(s, p["weight_gate"]).split(H, dim=-1)
        for name, r in zip(v.sigmoid_blocks, rec):
            pre[name] = pre[name] + r
    if v.peepholes:
        for name in ("i", "f"):
            if name in pre:
                pre[name] = _peephole(pre, name, p, c, True)
    return pre


def _peephole(
    a: Mapping[str, Tensor], gate: str, p: Mapping[str, Tensor], c: Tensor, on: bool
) -> Tensor:
    """``a_gate + p_gate * c`` with peepholes, else ``a_gate``."""
    return a[gate] + p[f"peephole_{gate}"] * c if on else a[gate]


def _cell_norm(c: Tensor, p: Mapping[str, Tensor], spec: CellSpec) -> Tensor:
    """``LN(c)`` (with gain and bias) under layer norm, else ``c``."""
    if not spec.layer_norm:
        return c
    return F.layer_norm(c, (spec.hidden_size,), p["ln_weight_c"], p["ln_bias_c"], LN_EPS)


def gru_step(x: Tensor, h: Tensor, p: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    r"""One GRU step as in ``torch.nn.GRU`` (gate order r, z, n)::

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
    """
    xr, xz, xn = F.linear(x, p["weight_ih"], p.get("bias_ih")).chunk(3, dim=-1)
    hr, hz, hn = F.linear(h, p["weight_hh"], p.get("bias_hh")).chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    h_new = (1 - z) * n + z * h
    return h_new, {"reset": r, "update": z, "candidate": n}


def rnn_step(x: Tensor, h: Tensor, p: Mapping[str, Tensor], nonlinearity: str = "tanh") -> Tensor:
    """One Elman RNN step as in ``torch.nn.RNN``: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``."""
    a = F.linear(x, p["weight_ih"], p.get("bias_ih")) + F.linear(
        h, p["weight_hh"], p.get("bias_hh")
    )
    return torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)


# -- modules ---------------------------------------------------------------------------------


def _check_cell_input(owner: str, x: Tensor, input_size: int, dtype: torch.dtype) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: expected input to be a Tensor, got {type(x).__name__}")
    if x.dim() not in (1, 2):
        raise ValueError(f"{owner}: Expected input to be 1D or 2D, got {x.dim()}D instead")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{owner}: input.size(-1) must be equal to input_size. "
            f"Expected {input_size}, got {x.shape[-1]}"
        )
    if x.dtype != dtype:
        raise TypeError(f"{owner}: input dtype {x.dtype} does not match the weights' dtype {dtype}")


def _check_state(owner: str, name: str, t: Tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{owner}: {name} must be a Tensor, got {type(t).__name__}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{owner}: Expected {name} of size {shape}, got {tuple(t.shape)}")


class _CellBase(nn.Module):
    input_size: int
    hidden_size: int
    weight_ih: nn.Parameter
    weight_hh: nn.Parameter

    def _params(self) -> dict[str, Tensor]:
        return dict(self.named_parameters(recurse=False))

    def reset_parameters(self) -> None:
        """torch's initialisation: every parameter uniform in ±1/sqrt(H)."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class LSTMCell(_CellBase):
    r"""One LSTM step, a drop-in for ``torch.nn.LSTMCell`` with variants.

    Args:
        input_size: I, features of ``x``.
        hidden_size: H, units of the cell.
        bias: use ``bias_ih`` and ``bias_hh``.
        variant: a preset name (``"vanilla"``, ``"peephole"``, ``"cifg"``...) or a :class:`Variant`.
        layer_norm: normalise the gate projections and the cell (Ba et al. 2016).
        forget_bias: added to the forget-gate rows of ``bias_ih`` at initialisation.

    Call: ``h', c' = cell(x, (h, c))`` with ``x`` (B, I) or (I,), ``h``/``c`` (B, H) or (H,).
    With ``full_gate_recurrence`` the state is ``(h, c, s)`` (``s``: the previous [i, f, o],
    (B, nS*H), zeros when omitted) and the cell returns ``(h', c', s')``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        variant: str | Variant = "vanilla",
        layer_norm: bool = False,
        forget_bias: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.variant = resolve_variant(variant, "LSTMCell")
        self.layer_norm = layer_norm
        self.spec = CellSpec(self.variant, hidden_size, 0, layer_norm, bias)
        for name, shape in lstm_param_shapes(self.spec, input_size).items():
            self.register_parameter(
                name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            )
        self.forget_bias = forget_bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for name, w in self.named_parameters(recurse=False):
            if name.startswith("ln_weight"):
                nn.init.ones_(w)
            elif name.startswith("ln_bias"):
                nn.init.zeros_(w)
        if self.forget_bias:
            _add_forget_bias(
                self.variant,
                self.hidden_size,
                getattr(self, "bias_ih", None),
                self.forget_bias,
                "LSTMCell",
            )

    def forward(self, x: Tensor, hx: tuple[Tensor, ...] | None = None) -> tuple[Tensor, ...]:
        _check_cell_input("LSTMCell", x, self.input_size, self.weight_ih.dtype)
        unbatched = x.dim() == 1
        if unbatched:
            x = x.unsqueeze(0)
        B, H = x.shape[0], self.hidden_size
        fgr = self.variant.full_gate_recurrence
        n_s = len(self.variant.sigmoid_blocks) * H
        if hx is None:
            zeros = x.new_zeros(B, H)
            h, c, s = zeros, zeros, x.new_zeros(B, n_s)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) not in ((2, 3) if fgr else (2,)):
                raise ValueError(
                    "LSTMCell: hx must be a tuple (h, c)" + (" or (h, c, s)" if fgr else "")
                )
            lead = () if unbatched else (B,)
            _check_state("LSTMCell", "h", hx[0], (*lead, H))
            _check_state("LSTMCell", "c", hx[1], (*lead, H))
            h, c = (hx[0].unsqueeze(0), hx[1].unsqueeze(0)) if unbatched else (hx[0], hx[1])
            s = x.new_zeros(B, n_s)
            if len(hx) == 3:
                _check_state("LSTMCell", "s", hx[2], (*lead, n_s))
                s = hx[2].unsqueeze(0) if unbatched else hx[2]
        h, c, s_new, _ = lstm_step(x, h, c, self._params(), self.spec, s if fgr else None)
        out = (h, c, s_new) if s_new is not None else (h, c)
        return tuple(t.squeeze(0) for t in out) if unbatched else out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant.name!r}"


def _add_forget_bias(
    variant: Variant, H: int, bias: Tensor | None, value: float, owner: str
) -> None:
    if bias is None:
        raise ValueError(f"{owner}: forget_bias={value} needs bias=True")
    if not variant.has_f:
        raise ValueError(
            f"{owner}: forget_bias needs a forget gate with weights; variant {variant.name!r} has none"
        )
    k = variant.blocks.index("f")
    with torch.no_grad():
        bias[k * H : (k + 1) * H] += value


class GRUCell(_CellBase):
    """One GRU step, a drop-in for ``torch.nn.GRUCell``: ``h' = cell(x, h)`` (see :func:`gru_step`)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size, **kw))
        self.reset_parameters()

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        _check_cell_input("GRUCell", x, self.input_size, self.weight_ih.dtype)
        return _simple_cell(self, "GRUCell", x, hx, lambda x, h: gru_step(x, h, self._params())[0])


class RNNCell(_CellBase):
    """One Elman step, a drop-in for ``torch.nn.RNNCell``: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.nonlinearity = nonlinearity
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size, **kw))
        self.reset_parameters()

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        _check_cell_input("RNNCell", x, self.input_size, self.weight_ih.dtype)
        step = lambda x, h: rnn_step(x, h, self._params(), self.nonlinearity)
        return _simple_cell(self, "RNNCell", x, hx, step)


def _simple_cell(cell: _CellBase, owner: str, x: Tensor, hx: Tensor | None, step) -> Tensor:
    unbatched = x.dim() == 1
    if unbatched:
        x = x.unsqueeze(0)
    if hx is None:
        h = x.new_zeros(x.shape[0], cell.hidden_size)
    else:
        _check_state(
            owner, "hx", hx, ((cell.hidden_size,) if unbatched else (x.shape[0], cell.hidden_size))
        )
        h = hx.unsqueeze(0) if unbatched else hx
    out = step(x, h)
    return out.squeeze(0) if unbatched else out
