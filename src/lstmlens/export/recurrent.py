r"""A stacked, optionally bidirectional :class:`lstmlens.LSTM` / ``GRU`` / ``RNN`` as ONNX nodes.

Each layer is exported whole, by the first exporter of its mode that takes it:

* ``native``: ONNX's own ``LSTM`` / ``GRU`` / ``RNN`` operator, both directions in one node.
  Gate rows are reordered (torch LSTM i, f, g, o -> ONNX i, o, f, c; GRU r, z, n -> ONNX
  z, r, h with ``linear_before_reset=1``); the ``peephole`` preset maps onto ONNX's ``P``
  input (``p_i c_{t-1}``, ``p_f c_{t-1}``, ``p_o c_t``: the same equations). Taken by vanilla
  and peephole LSTMs without layer norm or projection, and by every GRU and RNN.
* ``scan``: any other LSTM, one ``Scan`` per direction (:mod:`lstmlens.export.lstm_scan`).

Shapes (time major inside the graph): ``x`` (T, B, I); states ``(L*D, B, P)`` and
``(L*D, B, H)``; output ``(T, B, D*P)``. Eval semantics: no dropout between layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor

from ..recurrent import RecurrentBase
from ..variants import PRESETS
from .graph import Graph, Lengths
from .lstm_scan import lstm_scan

if TYPE_CHECKING:
    from ..layers import LSTM, RNN

__all__ = ["LAYER_EXPORTERS", "exporter_for", "recurrent"]

# torch row blocks -> ONNX row blocks
_ONNX_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}

LayerExporter = Callable[
    [Graph, RecurrentBase, int, str, list[str], Lengths | None], tuple[str, list[str]]
]


def _reorder(w: Tensor, mode: str) -> Tensor:
    blocks = w.detach().chunk(len(_ONNX_ORDER[mode]), dim=0)
    return torch.cat([blocks[k] for k in _ONNX_ORDER[mode]], dim=0)


def _native_fits(module: RecurrentBase) -> bool:
    if module.mode != "LSTM":
        return True
    simple = module.variant in (PRESETS["vanilla"], PRESETS["peephole"])
    return simple and not module.layer_norm and not module.proj_size


def _native(
    g: Graph, module: RecurrentBase, layer: int, x: str, init: list[str], lengths: Lengths | None
) -> tuple[str, list[str]]:
    """One layer through ONNX's ``LSTM``/``GRU``/``RNN`` op; ``init``: per state (D, B, *) or []."""
    mode, D, H = module.mode, module.num_directions, module.hidden_size
    params = [module.layer_parameters(layer, d) for d in range(D)]
    stack = lambda key: torch.stack([_reorder(p[key], mode) for p in params])  # noqa: E731
    inputs = [x, g.weight("W", stack("weight_ih")), g.weight("R", stack("weight_hh"))]
    if module.bias:
        bias = torch.cat([stack("bias_ih"), stack("bias_hh")], dim=-1)  # (D, 2*nG*H)
        inputs.append(g.weight("B", bias))
    else:
        inputs.append("")
    inputs.append("" if lengths is None else lengths.int32)  # sequence_lens
    inputs += init if init else [""] * (2 if mode == "LSTM" else 1)
    attrs: dict = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if mode == "LSTM" and cast("LSTM", module).variant.peepholes:
        peep = [torch.cat([p[f"peephole_{k}"].detach() for k in "iof"]) for p in params]
        inputs.append(g.weight("P", torch.stack(peep)))  # (D, 3H), order i, o, f
    if mode == "GRU":
        attrs["linear_before_reset"] = 1
    if mode == "RNN":
        attrs["activations"] = [cast("RNN", module).nonlinearity.capitalize()] * D
    n_out = 3 if mode == "LSTM" else 2
    outs = g.op(mode, *inputs, outputs=n_out, **attrs)
    y = g.op("Transpose", outs[0], perm=[0, 2, 1, 3])  # (T, D, B, H) -> (T, B, D, H)
    y = g.op("Reshape", y, g.ints([0, 0, -1]))  # (T, B, D*H)
    return y, outs[1:]


def _scan(
    g: Graph, module: RecurrentBase, layer: int, x: str, init: list[str], lengths: Lengths | None
) -> tuple[str, list[str]]:
    """One LSTM layer, a ``Scan`` per direction."""
    spec, D = cast("LSTM", module).spec, module.num_directions
    ys, hs, cs = [], [], []
    for d in range(D):
        if init:
            index = g.ints([d])
            h0, c0 = (g.op("Squeeze", g.op("Gather", s, index, axis=0), g.ints([0])) for s in init)
        else:
            h0 = g.zeros(x, 1, [], spec.state_size)
            c0 = g.zeros(x, 1, [], spec.hidden_size)
        p = module.layer_parameters(layer, d)
        y, h, c = lstm_scan(g, x, p, spec, h0, c0, bool(d), lengths)
        ys.append(y)
        hs.append(g.op("Unsqueeze", h, g.ints([0])))
        cs.append(g.op("Unsqueeze", c, g.ints([0])))
    cat = lambda vs, axis: vs[0] if len(vs) == 1 else g.op("Concat", *vs, axis=axis)  # noqa: E731
    return cat(ys, -1), [cat(hs, 0), cat(cs, 0)]


#: (name, takes this layer?, exporter), tried in order: the first that takes a layer exports it
LAYER_EXPORTERS: tuple[tuple[str, Callable[[RecurrentBase], bool], LayerExporter], ...] = (
    ("native", _native_fits, _native),
    ("scan", lambda module: module.mode == "LSTM", _scan),
)


def exporter_for(module: RecurrentBase) -> tuple[str, LayerExporter]:
    """The name and function of the first exporter that takes ``module``."""
    for name, fits, run in LAYER_EXPORTERS:
        if fits(module):
            return name, run
    raise TypeError(f"export.onnx: no ONNX exporter for a {type(module).__name__} layer")


def recurrent(
    g: Graph,
    module: RecurrentBase,
    x: str,
    states: Sequence[str] | None = None,
    lengths: str | None = None,
) -> tuple[str, list[str]]:
    """All layers of ``module``: ``x`` (T, B, I) -> ``(output (T, B, D*P), finals)``.

    ``states`` are the initial ``h_0`` (and ``c_0``) of shape ``(L*D, B, *)``, or None for
    zeros; ``finals`` the matching ``h_n`` (and ``c_n``). ``lengths`` (B,) int64 makes ``x``
    a padded batch (a ``PackedSequence`` in eager): states stop at each sequence's end, the
    reverse direction starts there, and the output is zero past it.
    """
    seq = None if lengths is None else Lengths(g, lengths, x)
    _, run = exporter_for(module)
    D = module.num_directions
    finals: list[list[str]] = [[] for _ in range(module._state_count)]
    for layer in range(module.num_layers):
        init = []
        if states is not None:
            rows = g.ints(list(range(layer * D, (layer + 1) * D)))
            init = [g.op("Gather", s, rows, axis=0) for s in states]
        x, ends = run(g, module, layer, x, init, seq)
        for j, end in enumerate(ends):
            finals[j].append(end)
    if seq is not None:
        x = g.op("Mul", x, seq.mask)  # zero past each sequence's end
    return x, [f[0] if len(f) == 1 else g.op("Concat", *f, axis=0) for f in finals]
