"""Ship a trained model: ONNX files (and a sidecar JSON for task runs), ``torch.export``.

``lstmlens.export.onnx(model, example, path)`` writes any lstmlens layer or task model;
``lstmlens.export.export_run(run, path, format)`` a whole run folder (``lstmlens export``).
Nothing here imports ``onnx`` until it is called.
"""

from .onnx import onnx as onnx

__all__ = ["onnx"]
