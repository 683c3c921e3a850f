"""A small ONNX graph builder: nodes by op name, weights as initializers, fresh value names.

Every exporter in :mod:`lstmlens.export` writes through one :class:`Graph`::

    g = Graph("lstm")
    x = g.input("input", ["T", "B", 8])
    w = g.weight("W", tensor)                 # an initializer (numpy float32 copy)
    y = g.op("MatMul", x, w)                  # one output name
    h, c = g.op("Split", y, g.ints([4, 4]), outputs=2, axis=-1)
    g.output(y, "output", ["T", "B", 4])
    model = g.model(opset=17)

``g.sub(name)`` makes the builder of a subgraph (a ``Scan``/``Loop`` body): it shares the
name counter, so names never clash with the outer graph, whose values (weights included)
the body may read directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["DEFAULT_OPSET", "Graph", "Lengths"]

#: LayerNormalization needs 17; every runtime since 2022 reads it.
DEFAULT_OPSET = 17

Dim = int | str | None


class Graph:
    """Collects the nodes, inputs, outputs and initializers of one ONNX graph."""

    def __init__(self, name: str, _counter: itertools.count | None = None) -> None:
        from onnx import TensorProto

        self.name = name
        self.float = TensorProto.FLOAT
        self.double = TensorProto.DOUBLE
        self.int64 = TensorProto.INT64
        self.bool = TensorProto.BOOL
        self.nodes: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self.initializers: list[Any] = []
        self._counter = _counter if _counter is not None else itertools.count()

    # -- names and values --------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._counter)}"

    def sub(self, name: str) -> Graph:
        """The builder of a subgraph sharing this graph's name counter."""
        return Graph(name, self._counter)

    def input(self, name: str, shape: Sequence[Dim], elem: int | None = None) -> str:
        from onnx import helper

        self.inputs.append(
            helper.make_tensor_value_info(name, self.float if elem is None else elem, shape)
        )
        return name

    def output(self, value: str, name: str, shape: Sequence[Dim], elem: int | None = None) -> str:
        """Expose ``value`` as graph output ``name`` (an Identity renames it when needed)."""
        from onnx import helper

        if value != name:
            self.nodes.append(helper.make_node("Identity", [value], [name]))
        kind = self.float if elem is None else elem
        self.outputs.append(helper.make_tensor_value_info(name, kind, shape))
        return name

    def weight(self, hint: str, value: torch.Tensor | np.ndarray, dtype: Any = np.float32) -> str:
        """A constant tensor stored as an initializer."""
        from onnx import numpy_helper

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        name = self.fresh(hint)
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, values: Sequence[int]) -> str:
        """An int64 constant (shapes, axes, split sizes)."""
        return self.weight("ints", np.asarray(values, dtype=np.int64), np.int64)

    def scalar(self, value: float) -> str:
        return self.weight("scalar", np.asarray(value, dtype=np.float32))

    # -- nodes -------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> Any:
        """Add one node; returns its output name (or a list of ``outputs`` names)."""
        from onnx import helper

        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any):
        """Add one node with outputs named by the caller ('' skips an optional output)."""
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), **attrs))

    def dim(self, value: str, axis: int) -> str:
        """The size of ``value`` along ``axis`` (>= 0) as a 1-D int64 tensor (for shapes)."""
        return self.op("Shape", value, start=axis, end=axis + 1)

    def zeros(self, like: str, batch_axis: int, lead: Sequence[int], width: int) -> str:
        """Zeros of shape ``(*lead, B, width)`` with ``B`` read from ``like``'s ``batch_axis``."""
        from onnx import helper

        parts = [self.ints(list(lead))] if lead else []
        shape = self.op("Concat", *parts, self.dim(like, batch_axis), self.ints([width]), axis=0)
        value = helper.make_tensor("zero", self.float, [1], [0.0])
        return self.op("ConstantOfShape", shape, value=value)

    # -- the model ---------------------------------------------------------------------
    def graph(self) -> Any:
        from onnx import helper

        return helper.make_graph(
            self.nodes, self.name, self.inputs, self.outputs, self.initializers
        )

    def model(self, opset: int = DEFAULT_OPSET, doc: str = "") -> Any:
        from onnx import checker, helper

        import lstmlens

        model = helper.make_model(
            self.graph(),
            opset_imports=[helper.make_opsetid("", opset)],
            producer_name="lstmlens",
            producer_version=lstmlens.__version__,
            doc_string=doc,
        )
        checker.check_model(model, full_check=True)
        return model


class Lengths:
    """The lengths of the sequences of a padded batch, in the forms the exporters need.

    ``lengths`` (B,) int64 -> ``int32`` (B,) (ONNX's ``sequence_lens``) and ``valid``
    (T, B, 1) bool (step ``t`` of sequence ``b`` is real), for time-major ``x`` (T, B, ...).
    """

    def __init__(self, g: Graph, lengths: str, x: str) -> None:
        self.int64 = lengths
        self.int32 = g.op("Cast", lengths, to=6)  # TensorProto.INT32
        T = g.op("Squeeze", g.dim(x, 0), g.ints([0]))
        zero, one = (g.weight("i", np.asarray(k, np.int64), np.int64) for k in (0, 1))
        steps = g.op("Unsqueeze", g.op("Range", zero, T, one), g.ints([1]))  # (T, 1)
        self.valid = g.op("Unsqueeze", g.op("Less", steps, lengths), g.ints([2]))  # (T, B, 1)
        self.mask = g.op("Cast", self.valid, to=g.float)  # (T, B, 1) float

    def reverse(self, g: Graph, x: str) -> str:
        """Each sequence of ``x`` (T, B, ...) reversed within its own length."""
        return g.op("ReverseSequence", x, self.int64, batch_axis=1, time_axis=0)
