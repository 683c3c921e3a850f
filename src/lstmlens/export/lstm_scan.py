r"""An LSTM layer-direction of any variant as an ONNX ``Scan`` over its step.

ONNX's own ``LSTM`` operator has no layer norm, projection, gate removal, coupling or gate
recurrence, so every such layer-direction is written out: the input projection of all steps
is one ``MatMul`` before the loop, and the ``Scan`` body is :func:`lstmlens.cells.lstm_step`
node for node (gate order i, f, g, o; a removed gate is the constant 1)::

    xb_t = LN(W_ih x_t) + b_ih + b_hh                 (T, B, nG*H), before the loop
    a    = xb_t + LN(W_hh h)  [+ W_gate s on i, f, o]   (B, nG*H), split into the gate blocks
    i = σ(a_i [+ p_i c])   f = σ(a_f [+ p_f c]) or 1 - i (cifg) or 1   g = act_in(a_g)
    c' = f c + i g         o = σ(a_o [+ p_o c'])        h' = [W_hr] (o act_out(LN(c')))

The ``Scan`` carries ``(h, c[, s])``; ``scan_input_directions`` / ``scan_output_directions``
run the reverse direction backwards over the whole sequence and write its outputs back in
time order, as :class:`lstmlens.LSTM` does for unpacked input. Eval semantics: no zoneout,
no recurrent dropout.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from ..cells import LN_EPS, CellSpec
from .graph import Graph, Lengths

__all__ = ["lstm_scan"]


def _layer_norm(g: Graph, value: str, weight: str, bias: str | None = None) -> str:
    inputs = (value, weight) if bias is None else (value, weight, bias)
    return g.op("LayerNormalization", *inputs, axis=-1, epsilon=LN_EPS)


def _step(
    b: Graph, p: Mapping[str, str], spec: CellSpec, h: str, c: str, s: str | None, xb: str
) -> tuple[str, str, str | None]:
    """Nodes of one step in body ``b``; ``p`` names the outer graph's prepared weights."""
    v, H = spec.variant, spec.hidden_size
    wh = b.op("MatMul", h, p["w_hh"])  # (B, nG*H)
    if spec.layer_norm:
        wh = _layer_norm(b, wh, p["ln_weight_hh"])
    a = b.op("Add", xb, wh)
    blocks = b.op("Split", a, b.ints([H] * len(v.blocks)), outputs=len(v.blocks), axis=-1)
    pre = dict(zip(v.blocks, blocks if len(v.blocks) > 1 else [blocks]))
    if v.full_gate_recurrence:
        assert s is not None
        n = len(v.sigmoid_blocks)
        rec = b.op("MatMul", s, p["w_gate"])  # (B, nS*H)
        parts = b.op("Split", rec, b.ints([H] * n), outputs=n, axis=-1)
        for name, r in zip(v.sigmoid_blocks, parts if n > 1 else [parts]):
            pre[name] = b.op("Add", pre[name], r)
    if v.peepholes:
        for name in ("i", "f"):
            if name in pre:
                pre[name] = b.op("Add", pre[name], b.op("Mul", p[f"peephole_{name}"], c))

    i = b.op("Sigmoid", pre["i"]) if v.has_i else None
    f = b.op("Sigmoid", pre["f"]) if v.has_f else None
    if v.coupled:
        assert i is not None  # a coupled forget gate needs the input gate
        f = b.op("Sub", p["one"], i)
    g = b.op("Tanh", pre["g"]) if v.input_activation == "tanh" else pre["g"]
    keep = c if f is None else b.op("Mul", f, c)
    write = g if i is None else b.op("Mul", i, g)
    c_new = b.op("Add", keep, write)
    o = None
    if v.has_o:
        a_o = pre["o"]
        if v.peepholes:
            a_o = b.op("Add", a_o, b.op("Mul", p["peephole_o"], c_new))
        o = b.op("Sigmoid", a_o)
    c_out = _layer_norm(b, c_new, p["ln_weight_c"], p["ln_bias_c"]) if spec.layer_norm else c_new
    m = b.op("Tanh", c_out) if v.output_activation == "tanh" else c_out
    if o is not None:
        m = b.op("Mul", o, m)
    h_new = b.op("MatMul", m, p["w_hr"]) if spec.proj_size else m
    s_new = None
    if v.full_gate_recurrence:
        acts = {k: act for k, act in (("i", i), ("f", f), ("o", o)) if act is not None}
        s_new = b.op("Concat", *[acts[k] for k in v.sigmoid_blocks], axis=-1)
    return h_new, c_new, s_new


def _prepare(g: Graph, params: Mapping[str, Tensor], spec: CellSpec) -> dict[str, str]:
    """Outer-graph initializers of one layer-direction, transposed for ``x @ W``."""
    p = {"w_hh": g.weight("w_hh", params["weight_hh"].T)}
    if spec.variant.coupled:
        p["one"] = g.scalar(1.0)
    if spec.proj_size:
        p["w_hr"] = g.weight("w_hr", params["weight_hr"].T)
    if spec.variant.full_gate_recurrence:
        p["w_gate"] = g.weight("w_gate", params["weight_gate"].T)
    for key in ("peephole_i", "peephole_f", "peephole_o", "ln_weight_hh", "ln_weight_c"):
        if key in params:
            p[key] = g.weight(key, params[key])
    if "ln_bias_c" in params:
        p["ln_bias_c"] = g.weight("ln_bias_c", params["ln_bias_c"])
    return p


def lstm_scan(
    g: Graph,
    x: str,
    params: Mapping[str, Tensor],
    spec: CellSpec,
    h0: str,
    c0: str,
    reverse: bool,
    lengths: Lengths | None = None,
) -> tuple[str, str, str]:
    """One layer-direction: ``x`` (T, B, I), ``h0`` (B, P), ``c0`` (B, H) -> ``(y (T, B, P), h_n, c_n)``.

    With ``lengths`` a sequence's state stops changing after its last step (so ``h_n`` is the
    state at its own end) and the reverse direction reads each sequence backwards within its
    own length (``ReverseSequence``), as :class:`lstmlens.LSTM` does for a ``PackedSequence``.
    """
    v, H, P = spec.variant, spec.hidden_size, spec.state_size
    xb = g.op("MatMul", x, g.weight("w_ih", params["weight_ih"].T))  # (T, B, nG*H)
    if spec.layer_norm:
        xb = _layer_norm(g, xb, g.weight("ln_weight_ih", params["ln_weight_ih"]))
    if spec.bias:
        both = (params["bias_ih"] + params["bias_hh"]).detach()
        xb = g.op("Add", xb, g.weight("bias", both))
    p = _prepare(g, params, spec)
    flip = lengths if reverse else None  # reversed within each length, outside the Scan
    if flip is not None:
        xb = flip.reverse(g, xb)

    b = g.sub("lstm_step")
    h = b.input(b.fresh("h"), ["batch", P])
    c = b.input(b.fresh("c"), ["batch", H])
    n_s = len(v.sigmoid_blocks) * H
    s = b.input(b.fresh("s"), ["batch", n_s]) if v.full_gate_recurrence else None
    xt = b.input(b.fresh("xb_t"), ["batch", len(v.blocks) * H])
    h_new, c_new, s_new = _step(b, p, spec, h, c, s, xt)
    if lengths is not None:  # a finished sequence keeps its state
        valid = b.input(b.fresh("valid_t"), ["batch", 1], elem=b.bool)
        h_new, c_new = b.op("Where", valid, h_new, h), b.op("Where", valid, c_new, c)
        if s_new is not None:
            assert s is not None  # full gate recurrence carries s
            s_new = b.op("Where", valid, s_new, s)
    b.output(h_new, b.fresh("h_out"), ["batch", P])
    b.output(c_new, b.fresh("c_out"), ["batch", H])
    if s_new is not None:
        b.output(s_new, b.fresh("s_out"), ["batch", n_s])
    b.output(h_new, b.fresh("y_t"), ["batch", P])

    states = [h0, c0]
    if v.full_gate_recurrence:
        states.append(g.zeros(x, 1, [], n_s))
    scans = [xb] if lengths is None else [xb, lengths.valid]
    direction = [1 if reverse and flip is None else 0] * len(scans)
    outs = g.op(
        "Scan",
        *states,
        *scans,
        outputs=len(states) + 1,
        body=b.graph(),
        num_scan_inputs=len(scans),
        scan_input_directions=direction,
        scan_output_directions=direction[:1],
    )
    y = flip.reverse(g, outs[-1]) if flip is not None else outs[-1]
    return y, outs[0], outs[1]
