"""What the magnifier views of the lens page read besides the gates.

- :func:`cell_info`: how the recorded module is wired (variant, layer norm, projection), so
  that the cell view draws it as it is.
- :func:`reach_payload`: the memory reach of a few output steps (``trace_reach``).
- :func:`corpus_payload`: the state gates (h, c) of many steps, as uint8, for the pattern
  search: ``value = lo + q * (hi - lo) / 255`` per array (an error of at most
  ``(hi - lo) / 510``), row-major (T, W), base64.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from .reach import trace_reach
from .stats import one_sequence

__all__ = ["REACH_AUTO_WIDTH", "cell_info", "corpus_payload", "reach_payload"]


def cell_info(trace: Any) -> dict[str, Any]:
    """How the recorded module is wired, for the cell view (variant, layer norm, projection).

    ``consecutive`` says that row t - 1 of the page is the step before row t (false for a
    page whose rows are separate windows); ``before`` that the page carries, for such rows,
    the state each row's step read (arrays ``before_hidden`` / ``before_cell``, see
    :attr:`~lstmlens.lens.trace.Trace.before`).
    """
    module = getattr(trace, "module", None)
    before = getattr(trace, "before", None) is not None
    info: dict[str, Any] = {
        "consecutive": module is not None and not before,
        "before": before,
        "layerNorm": False,
        "proj": 0,
    }
    if module is None:
        return info
    info["proj"] = int(getattr(module, "proj_size", 0) or 0)
    info["layerNorm"] = bool(getattr(module, "layer_norm", False))
    variant = getattr(module, "variant", None)
    if variant is not None:
        info["variant"] = {
            "name": variant.name,
            "peepholes": variant.peepholes,
            "input": variant.has_i,
            "forget": variant.has_f,
            "output": variant.has_o,
            "coupled": variant.coupled,
            "inputActivation": variant.input_activation,
            "outputActivation": variant.output_activation,
            "gateRecurrence": variant.full_gate_recurrence,
        }
    return info


#: by default the page computes memory reach only for top layers this wide or narrower
#: (its cost grows with the square of the width: one backward pass of that many copies)
REACH_AUTO_WIDTH = 64


def reach_payload(trace: Any, steps: int, batch_index: int, count: int | None) -> dict[str, Any]:
    """Memory reach at ``count`` output steps spread over the ``steps`` of the page (the last
    one included),
    relative to lag 0, 3 significant digits: {"steps": [...], "curves": {t: [...]}}.

    ``count=None``: 4 steps when the top layer has at most :data:`REACH_AUTO_WIDTH` outputs.
    """
    module = getattr(trace, "module", None)
    if module is None or getattr(trace, "inputs", None) is None:
        return {"steps": [], "curves": {}, "note": "not available for this page"}
    width = (module.proj_size or module.hidden_size) * module.num_directions
    if count is None:
        count = 4 if width <= REACH_AUTO_WIDTH else 0
        if not count:
            return {
                "steps": [],
                "curves": {},
                "note": f"not computed by default for a top layer of {width} outputs "
                "(pass reach_steps, or call lstmlens.lens.memory_reach)",
            }
    if count < 1:
        return {"steps": [], "curves": {}, "note": "not computed (reach_steps=0)"}
    at = sorted({int(round(v)) for v in np.linspace(0, steps - 1, count + 1)[1:]})
    curves = {}
    for t, reach in trace_reach(trace, at, batch_index=batch_index).items():
        rel = reach / reach[0] if reach[0] > 0 else reach
        curves[str(t)] = [float(f"{v:.3g}") for v in rel]
    return {"steps": at, "curves": curves}


def _uint8(a: np.ndarray, what: str) -> dict[str, Any]:
    """(T, W) float -> {"lo", "hi", "width", "b64"} with q = round((a - lo) / (hi - lo) * 255)."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"lens page: {what} has non-finite values (nan or inf)")
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    span = hi - lo if hi > lo else 1.0
    q = np.round((a - lo) / span * 255.0).astype(np.uint8)  # (T, W) row-major
    return {
        "lo": lo,
        "hi": hi,
        "width": int(a.shape[1]),
        "b64": base64.b64encode(q.tobytes()).decode(),
    }


def corpus_payload(
    trace: Any, pieces: Sequence[str], batch_index: int, steps: int
) -> dict[str, Any]:
    """The state gates of the first ``steps`` steps and their tokens, for the pattern search."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"lens page: corpus_steps must be a positive int, got {steps!r}")
    arrays = {}
    for name in [g for g in ("hidden", "cell") if g in trace.gate_names]:
        for layer in range(trace.num_layers):
            for d in range(trace.num_directions):
                a = one_sequence(
                    trace.gate(name, layer=layer, direction=d),
                    batch_index,
                    lengths=trace.lengths,
                    batch_first=trace.batch_first,
                )[:steps]  # (N, W)
                arrays[f"{layer}/{d}/{name}"] = _uint8(a, f"gate {name!r} of layer {layer}")
    return {"steps": min(steps, len(pieces)), "tokens": list(pieces[:steps]), "arrays": arrays}
