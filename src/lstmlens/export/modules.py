r"""ONNX graphs of lstmlens modules, one builder per module class (a registry).

A builder adds the graph inputs and outputs of one model to a :class:`Graph` and returns the
example's ``feeds`` (input name -> array) and the eager outputs in graph-output order, which
:func:`lstmlens.export.onnx` uses to check the exported file.

=====================  =================================  =====================================
model                  inputs                             outputs
=====================  =================================  =====================================
LSTM / GRU / RNN       ``input`` [, ``lengths``]          ``output``, ``h_n`` [, ``c_n``]
                       [, ``h0``, ``c0``]
LanguageModel          ``tokens`` (B, T) int64 [, state]  ``logits`` (B, T, V), ``h_n``, ``c_n``
SequenceClassifier     ``x`` / ``tokens``, ``lengths``    ``logits`` (B, C)
ForecastNet            ``x`` (B, W, F)                    ``y`` (B, S, Q)
=====================  =================================  =====================================

``batch`` and ``time`` are dynamic; the state inputs appear when the example passes a state,
``lengths`` (B,) int64 when it is a ``PackedSequence`` (``input`` is then the padded batch).
Heads are built from the model's own modules (:func:`linear`, :func:`embedding`), so a task
model that changes its layers changes only its builder here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..recurrent import RecurrentBase
from .graph import Graph
from .recurrent import recurrent

if TYPE_CHECKING:  # the task models pull in their data stack: imported lazily below
    from ..tasks.classify import SequenceClassifier
    from ..tasks.forecast_model import ForecastNet
    from ..tasks.language import LanguageModel

__all__ = [
    "BUILDERS",
    "builder_for",
    "classifier_body",
    "classifier_graph",
    "embedding",
    "linear",
    "register",
]

Feeds = dict[str, np.ndarray]
Builder = Callable[[Graph, nn.Module, Any], tuple[Feeds, list[Tensor]]]

#: module class -> graph builder; subclasses find their parent's builder
BUILDERS: dict[type, Builder] = {}


def register(cls: type) -> Callable[[Builder], Builder]:
    def add(fn: Builder) -> Builder:
        BUILDERS[cls] = fn
        return fn

    return add


def builder_for(model: nn.Module) -> Builder:
    """The builder of ``model``'s class (or nearest registered base class)."""
    for cls in type(model).__mro__:
        if cls in BUILDERS:
            return BUILDERS[cls]
    known = ", ".join(sorted(c.__name__ for c in BUILDERS))
    raise TypeError(f"export.onnx: cannot export a {type(model).__name__}; known: {known}")


# -- pieces --------------------------------------------------------------------------------
def linear(g: Graph, x: str, module: nn.Linear) -> str:
    """``x @ W^T + b`` over the last axis."""
    y = g.op("MatMul", x, g.weight("linear_w", module.weight.T))
    return y if module.bias is None else g.op("Add", y, g.weight("linear_b", module.bias))


def embedding(g: Graph, ids: str, module: nn.Embedding) -> str:
    """Rows of the embedding table: int64 ``ids`` (...) -> (..., E)."""
    return g.op("Gather", g.weight("embedding", module.weight), ids, axis=0)


def time_major(g: Graph, x: str, batch_first: bool) -> str:
    return g.op("Transpose", x, perm=[1, 0, 2]) if batch_first else x


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _split_example(example: Any, who: str) -> tuple[Any, Any]:
    """``x`` or ``(x,)`` or ``(x, state)`` -> ``(x, state or None)``."""
    if isinstance(example, (Tensor, PackedSequence)):  # (a PackedSequence is a tuple)
        return example, None
    if isinstance(example, (tuple, list)) and 1 <= len(example) <= 2:
        return example[0], (example[1] if len(example) == 2 else None)
    raise TypeError(f"export.onnx: {who} example must be a Tensor or (input, state)")


def _states(state: Any, count: int) -> list[Tensor]:
    return [state] if count == 1 else list(state)


# -- builders -----------------------------------------------------------------------------
@register(RecurrentBase)
def _recurrent_graph(g: Graph, m: nn.Module, example: Any) -> tuple[Feeds, list[Tensor]]:
    """A layer; a ``PackedSequence`` example adds the input ``lengths`` (B,) int64 and makes
    ``input`` the padded batch (batch first like the layer); ``output`` is then padded too."""
    assert isinstance(m, RecurrentBase)
    x, state = _split_example(example, type(m).__name__)
    packed = isinstance(x, PackedSequence)
    if not packed and (not isinstance(x, Tensor) or x.dim() != 3):
        raise ValueError(
            f"export.onnx: {type(m).__name__} example input must be a batched 3-D Tensor "
            "or a PackedSequence"
        )
    LD, P, H = m.num_layers * m.num_directions, m.proj_size or m.hidden_size, m.hidden_size
    dims = ["batch", "time"] if m.batch_first else ["time", "batch"]
    xin = g.input("input", [*dims, m.input_size])
    feeds: Feeds
    if isinstance(x, PackedSequence):
        padded, lengths = pad_packed_sequence(x, m.batch_first)
        feeds = {"input": _np(padded), "lengths": _np(lengths.long())}
    else:
        feeds = {"input": _np(x)}
    states = None
    if state is not None:
        names, shapes = ["h0", "c0"][: m._state_count], [P, H]
        states = [g.input(n, [LD, "batch", w]) for n, w in zip(names, shapes)]
        feeds.update({n: _np(t) for n, t in zip(names, _states(state, m._state_count))})
    lens = g.input("lengths", ["batch"], elem=g.int64) if packed else None
    out, finals = recurrent(g, m, time_major(g, xin, m.batch_first), states, lens)
    g.output(time_major(g, out, m.batch_first), "output", [*dims, m.num_directions * P])
    for name, value, w in zip(["h_n", "c_n"], finals, [P, H]):
        g.output(value, name, [LD, "batch", w])
    with torch.no_grad():
        y, s = m(x, state)
    if packed:
        y = pad_packed_sequence(y, m.batch_first)[0]
    return feeds, [y, *_states(s, m._state_count)]


def language_graph(g: Graph, model: LanguageModel, with_state: bool) -> None:
    """``tokens`` (B, T) [+ ``h0``, ``c0``] -> ``logits`` (B, T, V), ``h_n``, ``c_n``."""
    lstm = model.lstm
    LD, P, H = (
        lstm.num_layers * lstm.num_directions,
        lstm.proj_size or lstm.hidden_size,
        lstm.hidden_size,
    )
    tokens = g.input("tokens", ["batch", "time"], elem=g.int64)
    states = None
    if with_state:
        states = [g.input("h0", [LD, "batch", P]), g.input("c0", [LD, "batch", H])]
    x = time_major(g, embedding(g, tokens, model.embedding), True)  # (T, B, E)
    out, (h_n, c_n) = recurrent(g, lstm, x, states)
    logits = linear(g, time_major(g, out, True), model.decoder)  # (B, T, V)
    g.output(logits, "logits", ["batch", "time", model.vocab_size])
    g.output(h_n, "h_n", [LD, "batch", P])
    g.output(c_n, "c_n", [LD, "batch", H])


def classifier_body(g: Graph, model: SequenceClassifier, x: str, lengths: str) -> str:
    """Prepared inputs (standardised or embedded) (B, L, E), ``lengths`` (B,) -> logits (B, C).

    A padded batch, as eager packs it: pooling ``last`` takes the top layer's state at each
    sequence's end (forward ``h_L`` beside backward ``h_1``), ``mean`` averages its own steps.
    """
    rnn = model.rnn
    out, finals = recurrent(g, rnn, time_major(g, x, True), None, lengths)  # (T, B, D*H)
    if model.pooling == "last":
        D = rnn.num_directions
        top = g.op("Slice", finals[0], g.ints([-D]), g.ints([rnn.num_layers * D]), g.ints([0]))
        summary = g.op("Reshape", g.op("Transpose", top, perm=[1, 0, 2]), g.ints([0, -1]))
    else:
        total = g.op("ReduceSum", out, g.ints([0]), keepdims=0)  # (B, D*H), zeros past ends
        count = g.op("Unsqueeze", g.op("Cast", lengths, to=g.float), g.ints([1]))  # (B, 1)
        summary = g.op("Div", total, count)
    return linear(g, summary, model.head)


def classifier_graph(g: Graph, model: SequenceClassifier) -> str:
    """Graph inputs of a classifier and its logits: ``x`` (B, L, F) float32 raw features
    (standardised in the graph) or ``tokens`` (B, L) int64, zero-padded, and ``lengths`` (B,)."""
    if model.text:
        x = embedding(g, g.input("tokens", ["batch", "time"], elem=g.int64), model.embed)
    else:
        raw = g.input("x", ["batch", "time", int(model.config["input_size"])])
        mean, std = g.weight("mean", model.mean), g.weight("std", model.std)
        x = g.op("Div", g.op("Sub", raw, mean), std)
    return classifier_body(g, model, x, g.input("lengths", ["batch"], elem=g.int64))


def _register_tasks() -> None:
    """Builders of the task models (imported lazily: the tasks pull in their data stack)."""
    from ..tasks.classify import SequenceClassifier
    from ..tasks.forecast_model import ForecastNet
    from ..tasks.language import LanguageModel

    @register(LanguageModel)
    def _language(g: Graph, m: nn.Module, example: Any) -> tuple[Feeds, list[Tensor]]:
        assert isinstance(m, LanguageModel)
        tokens, state = _split_example(example, "LanguageModel")
        language_graph(g, m, state is not None)
        feeds = {"tokens": _np(tokens.long())}
        if state is not None:
            feeds.update({"h0": _np(state[0]), "c0": _np(state[1])})
        with torch.no_grad():
            logits, (h, c) = m(tokens, state)
        return feeds, [logits, h, c]

    @register(SequenceClassifier)
    def _classifier(g: Graph, m: nn.Module, example: Any) -> tuple[Feeds, list[Tensor]]:
        """Inputs ``x`` (B, L, F) raw features or ``tokens`` (B, L), and ``lengths`` (B,)."""
        assert isinstance(m, SequenceClassifier)
        if not (isinstance(example, (tuple, list)) and len(example) == 2):
            raise TypeError("export.onnx: SequenceClassifier example must be (x, lengths)")
        x, lengths = example
        g.output(classifier_graph(g, m), "logits", ["batch", int(m.config["num_classes"])])
        feeds = {("tokens" if m.text else "x"): _np(x), "lengths": _np(lengths.long())}
        with torch.no_grad():
            return feeds, [m(x, lengths)]

    @register(ForecastNet)
    def _forecast(g: Graph, m: nn.Module, example: Any) -> tuple[Feeds, list[Tensor]]:
        assert isinstance(m, ForecastNet)
        x, _ = _split_example(example, "ForecastNet")
        x_in = g.input("x", ["batch", "time", m.config.input_size])
        shape: list[int | str | None] = ["batch", m.config.out_steps, m.config.n_outputs]
        g.output(forecast_body(g, m, x_in), "y", shape)
        with torch.no_grad():
            return {"x": _np(x)}, [m(x)]


def forecast_body(g: Graph, net: ForecastNet, x: str) -> str:
    """:class:`ForecastNet`: model-scale windows (B, W, F) -> (B, S, Q)."""
    out, _ = recurrent(g, net.lstm, time_major(g, x, True), None)  # (W, B, hidden)
    last = g.op("Gather", out, g.ints([-1]), axis=0)  # (1, B, hidden)
    y = linear(g, g.op("Squeeze", last, g.ints([0])), net.head)  # (B, S*Q)
    return g.op("Reshape", y, g.ints([0, net.config.out_steps, net.config.n_outputs]))
