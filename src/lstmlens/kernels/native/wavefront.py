"""The ``wavefront`` schedule: a whole LSTM stack in the native kernel, chains on threads.

One direction, several layers: layer ``l`` runs chunk ``k`` of the steps while layer ``l+1``
runs chunk ``k-1`` (backward: the other way round). Two directions: both at once, layer by
layer. See ``wavefront.h``. The masks are drawn here in exactly the order, shapes and dtypes the
sequential schedule draws them (per layer: each direction's zoneout / recurrent-dropout masks,
then the dropout mask between layers, as ``F.dropout`` draws it), so a seed gives the same masks
and the same results (up to rounding: the chunks' weight gradients are summed).

``auto`` picks it (:meth:`Wavefront.helps`) when torch may use two or more threads, the stack
has two or more layers or is bidirectional, and one step's recurrent product is large enough
that a chain's own work outweighs handing chunks between threads (:data:`MIN_STEP_WORK`,
measured by ``benchmarks/wavefront.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import Support
from .functions import bf16_kernel, bf16_requested
from .stack import lstm_stack_native

__all__ = ["MIN_STEP_WORK", "Wavefront", "chunks_for"]

#: multiply-adds of one step's recurrent product (B * 4H * P) below which ``auto`` keeps the
#: layers sequential: under it, threads handing chunks over cost more than they save
MIN_STEP_WORK = 1 << 20
#: steps per chunk of the wavefront, at least (fewer chunks: less pipeline fill and drain per
#: call but more per-chunk overhead; at most MAX_CHUNKS)
MIN_CHUNK_STEPS = 8
MAX_CHUNKS = 16


def chunks_for(steps: int, layers: int) -> int:
    """How many chunks the steps are cut into: the pipeline runs ``chunks + layers - 1`` chunk
    times instead of ``chunks * layers``, each chunk costing a little fixed work."""
    if layers < 2:
        return 1
    return max(1, min(MAX_CHUNKS, steps // MIN_CHUNK_STEPS))


def _tracing() -> bool:
    """Inside torch.compile / torch.export / jit or ONNX tracing (the op has no fake kernel)."""
    return (
        torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
        or torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
    )


def _gate_recurrent(layer) -> bool:
    return layer.spec.variant.full_gate_recurrence


class Wavefront:
    """A whole LSTM stack through ``torch.ops.lstmlens_native.lstm_stack_*``."""

    name = "wavefront"

    def supports(self, layer, kernel, x: Tensor, recording: bool) -> Support:
        if layer.mode != "LSTM":
            return Support(False, f"it runs LSTM layers, got a {layer.mode}")
        if kernel.name != "native":
            return Support(False, f"it needs the native backend, got {kernel.name!r}")
        if recording:
            return Support(False, "it does not record the gates (the lens)")
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            return Support(False, f"it runs float32/float64 on CPU, got {x.dtype} on {x.device}")
        if bf16_requested(None) and bf16_kernel():
            return Support(False, "it does not run bf16 matmuls (autocast to bfloat16 is on)")
        if _tracing():
            return Support(False, "it does not run under torch.compile, export or tracing")
        if x.shape[1] == 0:
            return Support(False, "the batch is empty")
        return Support(True)

    def helps(self, layer, x: Tensor) -> bool:
        if torch.get_num_threads() < 2:
            return False
        if not layer.bidirectional and (layer.num_layers < 2 or _gate_recurrent(layer)):
            return False  # one chain (fgr: its gate state cannot be handed between chunks)
        P = layer.proj_size or layer.hidden_size
        return x.shape[1] * 4 * layer.hidden_size * P >= MIN_STEP_WORK

    def run(self, layer, kernel, x: Tensor, states0: list[Tensor], pad):
        T, B = x.shape[0], x.shape[1]
        D, L = layer.num_directions, layer.num_layers
        P = layer.proj_size or layer.hidden_size
        params, masks, drops = [], [], []
        dropout = layer.dropout if layer.training else 0.0
        for lay in range(L):
            for d in range(D):
                params.append(layer.layer_parameters(lay, d))
                masks.append(layer._masks(x, pad.keep))  # x: only its T, B, dtype, device
            if lay < L - 1:
                # the mask F.dropout(layer_in) multiplies by: the same draws from the same RNG
                drops.append(F.dropout(x.new_ones(T, B, D * P), dropout) if dropout else None)
        h0, c0 = states0
        out, h_n, c_n = lstm_stack_native(
            x, h0, c0, params, layer.spec, masks, drops, pad.rev_idx, D, chunks_for(T, L)
        )
        return out, (h_n, c_n)
