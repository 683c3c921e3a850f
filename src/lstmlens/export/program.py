"""``lstmlens export RUN --format exported-program``: a ``torch.export`` ExportedProgram.

The layers run the native kernel as ``torch.library`` custom ops
(:mod:`lstmlens.kernels.native.ops`): ``torch.export`` records one ``lstm_forward`` node per
layer-direction, whose fake implementation gives its shapes for any length, so batch and
sequence length are both dynamic. Where the kernel cannot be built, the layers trace the
reference loop (the per-step cell), which unrolls: the length is then fixed by the trace.
Two programs, written with ``torch.export.save``:

* forecast: the whole :meth:`Forecaster.predict_at` pass of the ONNX graph
  (:mod:`lstmlens.export.forecast`): ``history`` (B, W, F) float64 -> ``forecast`` (B, S, Q)
  (the window W is the model's own);
* language: ``(tokens (B, T), h0, c0) -> (logits (B, T, V), h_n, c_n)``: a prompt or one
  generation step (T = 1);
* classify: ``(x (B, L, F) float32 or tokens (B, L) int64, lengths (B,) int64) ->
  (logits, probabilities (B, C))``: the padded batch with its lengths, as the classifier
  hands it to its layer (masks, no packing), so batch and length are both dynamic.
Load with :func:`load_program` (it loads the kernel first, so the ops are known), or
``torch.export.load(PATH).module()`` after importing lstmlens and loading the kernel.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "PROGRAMS",
    "ClassifyServing",
    "ForecastServing",
    "exported_program_run",
    "load_program",
]


class ForecastServing(nn.Module):
    """The forecast graph in torch ops: ``history`` (B, W, F) float64, data units -> (B, S, Q)."""

    mean: Tensor  # buffers
    scale: Tensor
    e0: Tensor

    def __init__(self, fc: Any) -> None:
        super().__init__()
        self.net, self.log, self.relative = fc.net, bool(fc.config.log), bool(fc.config.relative)
        self.shape = (fc.net.config.out_steps, fc.net.config.n_outputs)  # (S, Q)
        f64 = torch.float64
        self.register_buffer("mean", torch.as_tensor(fc.scaler.mean, dtype=f64))
        self.register_buffer("scale", torch.as_tensor(fc.scaler.scale, dtype=f64))
        e0 = torch.zeros(len(fc.scaler.mean), dtype=f64)
        e0[0] = 1.0
        self.register_buffer("e0", e0)

    def forward(self, history: Tensor) -> Tensor:
        z = history
        if self.log:
            z = torch.cat([history[..., :1].log(), history[..., 1:]], dim=-1)
        u = (z - self.mean) / self.scale  # (B, W, F)
        base = u[:, -1:, :1] if self.relative else torch.zeros_like(u[:, -1:, :1])  # (B, 1, 1)
        # the net's modules, not net(): its forward reads len(x), which fixes the batch size
        out, _ = self.net.lstm((u - base * self.e0).float())  # (B, W, hidden)
        y = self.net.head(out[:, -1]).unflatten(-1, self.shape)  # (B, S, Q)
        q = y.sort(dim=-1).values.double() + base
        out = q * self.scale[0] + self.mean[0]
        return out.exp() if self.log else out


class LanguageStep(nn.Module):
    """A language model on ``(tokens (B, T), h0, c0) -> (logits (B, T, V), h_n, c_n)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, (h, c) = self.model(tokens, (h0, c0))
        return logits, h, c


def _forecast(run: Path) -> tuple[nn.Module, tuple[Tensor, ...], tuple]:
    from ..tasks.forecast import Forecaster
    from .forecast import check_known

    fc, _ = Forecaster.load(run)
    assert fc.net is not None and fc.config.window is not None  # a loaded forecaster has both
    check_known(fc)
    fc.net.lstm.backend = _backend()
    example = torch.zeros(2, fc.config.window, fc.net.config.input_size, dtype=torch.float64)
    example[..., 0] = 1.0  # positive, for a log model
    return ForecastServing(fc), (example,), ({0: torch.export.Dim("batch")},)


def _language(run: Path) -> tuple[nn.Module, tuple[Tensor, ...], tuple]:
    from ..tasks.language import load_language_model

    model, _ = load_language_model(run)
    model.lstm.backend = _backend()
    lstm = model.lstm
    h = torch.zeros(lstm.num_layers, 2, lstm.proj_size or lstm.hidden_size)
    c = torch.zeros(lstm.num_layers, 2, lstm.hidden_size)
    batch = torch.export.Dim("batch")
    tokens: dict[int, Any] = {0: batch}
    if model.lstm.backend == "native":
        tokens[1] = torch.export.Dim("steps", min=1, max=1 << 20)
    example = torch.zeros(2, 2 if 1 in tokens else 1, dtype=torch.long)
    return LanguageStep(model), (example, h, c), (tokens, {1: batch}, {1: batch})


class ClassifyServing(nn.Module):
    """A classifier on ``(x or tokens, lengths) -> (logits, probabilities)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(x, lengths)
        return logits, logits.softmax(-1)


def _classify(run: Path) -> tuple[nn.Module, tuple[Tensor, ...], tuple]:
    from ..tasks.classify_run import load_classifier

    model, _ = load_classifier(run)
    model.rnn.backend = _backend()
    steps = 4
    if model.text:
        example = torch.ones(2, steps, dtype=torch.long)
    else:
        example = torch.zeros(2, steps, model.rnn.input_size)
    batch = torch.export.Dim("batch")
    x_dims: dict[int, Any] = {0: batch}
    if model.rnn.backend == "native":
        x_dims[1] = torch.export.Dim("steps", min=1, max=1 << 20)
    lengths = torch.tensor([steps, steps - 1])
    return ClassifyServing(model), (example, lengths), (x_dims, {0: batch})


def _backend() -> str:
    """The native kernel's custom ops where it can be had, else the (unrolled) reference loop."""
    from ..kernels.native.ops import ready

    return "native" if ready() else "reference"


#: task -> (module to trace, example inputs, dynamic shapes)
PROGRAMS: dict[str, Callable[[Path], tuple[nn.Module, tuple[Tensor, ...], tuple]]] = {
    "forecast": _forecast,
    "language": _language,
    "classify": _classify,
}


def exported_program_run(run: Path, task: str, output: Path) -> Path:
    """Trace the run's program with ``torch.export`` and save it atomically to ``output``."""
    from ..train.checkpoint import write_atomic

    if task not in PROGRAMS:
        raise ValueError(
            f"exported-program: no program for a {task} run; these tasks have one: "
            f"{', '.join(PROGRAMS)} (use --format onnx)"
        )
    module, example, shapes = PROGRAMS[task](run)
    module.eval()
    with torch.no_grad():
        program = torch.export.export(module, example, dynamic_shapes=shapes)
    buffer = io.BytesIO()  # torch.export.save wants a .pt2 name or a buffer
    torch.export.save(program, buffer)
    return write_atomic(output, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def load_program(path: Path) -> torch.export.ExportedProgram:
    """An ExportedProgram written by :func:`exported_program_run`, with the kernel loaded first
    (its ops must be registered before the graph that calls them is read)."""
    from ..kernels.native.ops import ready

    ready()
    return torch.export.load(str(path))
