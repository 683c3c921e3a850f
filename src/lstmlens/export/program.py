"""``lstmlens export RUN --format exported-program``: a ``torch.export`` ExportedProgram.

``torch.export`` traces lstmlens' plain reference backend (the per-step loop over the cell):
the fused and native kernels are opaque to it until they are registered as ``torch.library``
custom ops (issue 14, part 1). The loop unrolls, so the batch is dynamic but the length is
fixed by the trace. That suits two programs, written with ``torch.export.save``:

* forecast: the whole :meth:`Forecaster.predict_at` pass of the ONNX graph
  (:mod:`lstmlens.export.forecast`): ``history`` (B, W, F) float64 -> ``forecast`` (B, S, Q);
* language: one generation step, ``(tokens (B, 1), h0, c0) -> (logits (B, 1, V), h_n, c_n)``.

A classifier reads sequences of any length, so its run is refused with one line.
Load with ``torch.export.load(PATH).module()``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["PROGRAMS", "ForecastServing", "exported_program_run"]


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
    """One step of a language model: ``(tokens (B, 1), h0, c0) -> (logits, h_n, c_n)``."""

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
    fc.net.lstm.backend = "reference"
    example = torch.zeros(2, fc.config.window, fc.net.config.input_size, dtype=torch.float64)
    example[..., 0] = 1.0  # positive, for a log model
    return ForecastServing(fc), (example,), ({0: torch.export.Dim("batch")},)


def _language(run: Path) -> tuple[nn.Module, tuple[Tensor, ...], tuple]:
    from ..tasks.language import load_language_model

    model, _ = load_language_model(run)
    model.lstm.backend = "reference"
    lstm = model.lstm
    h = torch.zeros(lstm.num_layers, 2, lstm.proj_size or lstm.hidden_size)
    c = torch.zeros(lstm.num_layers, 2, lstm.hidden_size)
    batch = torch.export.Dim("batch")
    shapes = ({0: batch}, {1: batch}, {1: batch})
    return LanguageStep(model), (torch.zeros(2, 1, dtype=torch.long), h, c), shapes


#: task -> (module to trace, example inputs, dynamic shapes)
PROGRAMS: dict[str, Callable[[Path], tuple[nn.Module, tuple[Tensor, ...], tuple]]] = {
    "forecast": _forecast,
    "language": _language,
}


def exported_program_run(run: Path, task: str, output: Path) -> Path:
    """Trace the run's program with ``torch.export`` and save it atomically to ``output``."""
    from ..train.checkpoint import write_atomic

    if task not in PROGRAMS:
        raise ValueError(
            f"exported-program: a {task} run reads sequences of any length, which torch.export "
            "cannot trace through lstmlens' kernels until they are torch.library custom ops; "
            "use --format onnx"
        )
    module, example, shapes = PROGRAMS[task](run)
    module.eval()
    with torch.no_grad():
        program = torch.export.export(module, example, dynamic_shapes=shapes)
    buffer = io.BytesIO()  # torch.export.save wants a .pt2 name or a buffer
    torch.export.save(program, buffer)
    return write_atomic(output, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
