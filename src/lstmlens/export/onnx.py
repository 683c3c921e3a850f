"""``lstmlens.export.onnx(model, example, path)``: write a model as an ONNX file.

Every lstmlens recurrent layer exports, in every variant, with dynamic batch and sequence
length (see :mod:`lstmlens.export.recurrent`), and so do the task models (language model,
classifier, forecast network; :mod:`lstmlens.export.modules`). The graph computes the model
in eval mode: no dropout, zoneout or recurrent dropout.

    import lstmlens, lstmlens.export
    m = lstmlens.LSTM(8, 16, num_layers=2, variant="cifg", batch_first=True).eval()
    lstmlens.export.onnx(m, torch.randn(4, 10, 8), "m.onnx")   # inputs: input; outputs: output, h_n, c_n

``onnx`` and (for the check) ``onnxruntime`` come with ``pip install 'lstmlens[export]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .graph import DEFAULT_OPSET, Graph

__all__ = ["INSTALL_HINT", "onnx", "require_onnx", "run_onnx", "save_onnx"]

INSTALL_HINT = "pip install 'lstmlens[export]'"


def require_onnx(what: str = "onnx") -> None:
    """Raise ``ModuleNotFoundError`` naming the install command when ``what`` is missing."""
    import importlib.util

    if importlib.util.find_spec(what) is None:
        raise ModuleNotFoundError(f"{what} is not installed; install it with {INSTALL_HINT}")


def save_onnx(model_proto: Any, path: str | os.PathLike) -> Path:
    """Write an ONNX ``ModelProto`` atomically."""
    from ..train.checkpoint import write_atomic

    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(model_proto.SerializeToString()))


def run_onnx(path_or_bytes: str | os.PathLike | bytes, feeds: dict[str, np.ndarray]) -> list:
    """Outputs of an ONNX model on ``feeds`` with ONNX Runtime on one CPU thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def onnx(
    model: nn.Module,
    example: Any,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-3,
) -> Path:
    """Export ``model`` to ``path`` (written atomically) and return the path.

    Args:
        model: an :class:`lstmlens.LSTM` / ``GRU`` / ``RNN`` or a task model.
        example: an input the model takes (``x`` or ``(x, state)``); with a state the graph
            gets state inputs. Batch size and length are not fixed by it.
        opset: the ONNX opset (17 or later).
        check: run the file with ONNX Runtime on ``example`` (when installed) and raise
            ``ValueError`` if any output differs from eager by more than ``atol`` (a check
            against a wrong graph: float32 rounding alone stays far below it on short
            examples, though it grows over long sequences in eager and ONNX alike).
    """
    require_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"export.onnx: model must be an nn.Module, got {type(model).__name__}")
    if opset < DEFAULT_OPSET:
        raise ValueError(f"export.onnx: opset must be >= {DEFAULT_OPSET}, got {opset}")
    from .modules import _register_tasks, builder_for

    _register_tasks()
    was_training = model.training
    model.eval()
    try:
        g = Graph(type(model).__name__)
        feeds, expected = builder_for(model)(g, model, example)
    finally:
        model.train(was_training)
    proto = g.model(opset, doc=f"lstmlens {type(model).__name__}; eval mode")
    if check:
        check_outputs(proto.SerializeToString(), feeds, [t.numpy() for t in expected], atol)
    return save_onnx(proto, path)


def check_outputs(data: bytes, feeds: dict, expected: list[np.ndarray], atol: float) -> None:
    """Raise ``ValueError`` when ONNX Runtime's outputs differ from ``expected``."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return
    for k, (got, want) in enumerate(zip(run_onnx(data, feeds), expected, strict=True)):
        err = float(np.max(np.abs(got - want))) if want.size else 0.0
        if not err <= atol:
            raise ValueError(
                f"export.onnx: output {k} differs from eager by {err:.3g} (> {atol:g}) "
                "on the example"
            )
