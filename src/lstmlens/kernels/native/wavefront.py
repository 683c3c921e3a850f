"""The ``wavefront`` schedule: a whole LSTM stack in the native kernel, chains on threads.

One direction, several layers: layer ``l`` runs chunk ``k`` of the steps while layer ``l+1``
runs chunk ``k-1`` (backward: the other way round). Two directions: both at once, layer by
layer. See ``wavefront.h``. The masks are drawn here in exactly the order, shapes and dtypes the
sequential schedule draws them (per layer: each direction's zoneout / recurrent-dropout masks,
then the dropout mask between layers, as ``F.dropout`` draws it), so a seed gives the same masks
and the same results (up to rounding: the chunks' weight gradients are summed).

``auto`` picks it (:meth:`Wavefront.helps`) only when :data:`AUTO` is on (it is off: see there),
and then when torch may use two or more threads and
either the layer is bidirectional with at least :data:`MIN_DIRECTION_WORK` multiply-adds of
recurrent product per direction (``T * B * 4H * P``: two threads start per layer), or the
stack has two or more layers, enough steps for two chunks, and at least :data:`MIN_STEP_WORK`
multiply-adds per step (``B * 4H * P``: each chunk handed between threads costs a few fixed
kernel calls). ``benchmarks/wavefront.py --crossover`` measures both.

With full gate recurrence (``fgr``) the gate state starts at zero on each call of the one-layer
kernel, so the steps are not cut into chunks: an ``fgr`` stack runs its directions at once but
its layers one after another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import Support
from .functions import bf16_kernel, bf16_requested
from .stack import lstm_stack_native

__all__ = ["AUTO", "MIN_DIRECTION_WORK", "MIN_STEP_WORK", "Wavefront", "chunks_for"]

#: multiply-adds of one step's recurrent product (B * 4H * P) below which ``auto`` keeps the
#: layers of a stack sequential: under it, the fixed cost of each chunk outweighs the overlap
MIN_STEP_WORK = 1 << 18
#: multiply-adds of one direction's whole recurrent product (T * B * 4H * P) below which
#: ``auto`` runs a bidirectional layer's directions one after another
MIN_DIRECTION_WORK = 1 << 20
#: whether ``auto`` may take the wavefront at all. Off: measured quietly on the 2-core Intel
#: Xeon (``benchmarks/wavefront.py --repeats 7 --crossover``), the sequential schedule with
#: torch's two threads per matmul was as fast or faster at (64,100,256,256) x 2 layers (train
#: 0.78-0.82x torch.nn.LSTM against 0.87-0.89x) and (32,200,128,256) bidirectional (0.78-0.81x
#: against 0.81-0.84x) and at most small shapes; the wavefront used 8-10% less CPU time. The
#: rule below is what ``auto`` applies when this is switched on for a machine where it pays.
AUTO = False
#: steps per chunk of the wavefront, at least, and chunks at most: fewer chunks mean more
#: pipeline fill and drain (chunks + layers - 1 chunk-times), more mean more fixed cost
MIN_CHUNK_STEPS = 12
MAX_CHUNKS = 8


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
        if not AUTO:
            return False
        if torch.get_num_threads() < 2:
            return False
        T, B = x.shape[0], x.shape[1]
        step = B * 4 * layer.hidden_size * (layer.proj_size or layer.hidden_size)
        if layer.bidirectional:
            return T * step >= MIN_DIRECTION_WORK
        if _gate_recurrent(layer) or chunks_for(T, layer.num_layers) < 2:
            return False  # one chain at a time (fgr: its gate state cannot cross chunks)
        return step >= MIN_STEP_WORK

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
