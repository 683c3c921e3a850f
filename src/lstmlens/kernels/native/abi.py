"""The native ops' argument lists as Python builds them, checked against the library's own.

The one definition is in C++ (``layout.h``: the X-macro lists the kernels index with, and the
op table in ``ops.cpp``). The library exports them as text from ``lstmlens_native_abi()``;
the loader compares that text with the tuples below once, when it loads the library, and
refuses a library that differs (:func:`mismatch` names the first difference in one line). So
Python and C++ can no longer agree by position only: a slot, config int or saved tensor added on
one side and not the other stops the kernel from loading instead of misreading memory.
"""

from __future__ import annotations

from ...cells import CellSpec

__all__ = [
    "GRU_SAVED",
    "LSTM_CONFIG",
    "LSTM_SAVED",
    "LSTM_SLOTS",
    "OPS",
    "RNN_SAVED",
    "SIMPLE_SLOTS",
    "lstm_config",
    "mismatch",
    "parse",
]

#: the LSTM weight list, in order (absent weights are passed empty)
LSTM_SLOTS = (
    "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "peephole_i", "peephole_f",
    "peephole_o", "weight_gate", "ln_weight_ih", "ln_weight_hh", "ln_weight_c", "ln_bias_c",
)  # fmt: skip
#: the LSTM config ints: flags (0/1), then sizes
LSTM_CONFIG = (
    "has_i", "has_f", "has_o", "coupled", "peepholes", "tanh_in", "tanh_out",
    "full_gate_recurrence", "layer_norm", "hidden_size", "proj_size", "bf16",
)  # fmt: skip
#: what ``lstm_forward(train=True)`` returns and ``lstm_backward`` takes back
LSTM_SAVED = (
    "out", "h_n", "c_n", "c", "c_new", "gates", "y", "xn", "rstd_x", "rn", "rstd_r", "c_norm",
    "rstd_c", "sig",
)  # fmt: skip
#: the GRU / RNN weight list, and what their forwards save
SIMPLE_SLOTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
GRU_SAVED = ("out", "h_n", "gates", "hn")
RNN_SAVED = ("out", "h_n", "acts")
#: the ops the library registers in ``torch.ops.lstmlens_native``
OPS = ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "rnn_forward",
       "rnn_backward", "lstm_stack_forward", "lstm_stack_backward")  # fmt: skip

_EXPECTED = {
    "lstm_slots": LSTM_SLOTS,
    "lstm_config": LSTM_CONFIG,
    "lstm_saved": LSTM_SAVED,
    "simple_slots": SIMPLE_SLOTS,
    "gru_saved": GRU_SAVED,
    "rnn_saved": RNN_SAVED,
    "ops": OPS,
}


def lstm_config(spec: CellSpec, bf16: bool = False) -> list[int]:
    """The LSTM config ints of ``spec``, in the order of :data:`LSTM_CONFIG`."""
    v = spec.variant
    values = {
        "has_i": v.has_i,
        "has_f": v.has_f,
        "has_o": v.has_o,
        "coupled": v.coupled,
        "peepholes": v.peepholes,
        "tanh_in": v.input_activation == "tanh",
        "tanh_out": v.output_activation == "tanh",
        "full_gate_recurrence": v.full_gate_recurrence,
        "layer_norm": spec.layer_norm,
        "hidden_size": spec.hidden_size,
        "proj_size": spec.proj_size,
        "bf16": bf16,
    }
    return [int(values[name]) for name in LSTM_CONFIG]


def parse(text: str) -> dict[str, tuple[str, ...]]:
    """``"key=a,b;key2=c;"`` -> ``{"key": ("a", "b"), "key2": ("c",)}``."""
    out: dict[str, tuple[str, ...]] = {}
    for entry in filter(None, text.split(";")):
        key, _, names = entry.partition("=")
        out[key] = tuple(filter(None, names.split(",")))
    return out


def mismatch(text: str) -> str | None:
    """The first difference between the library's lists (``text``) and Python's, as one line;
    None when they agree."""
    got = parse(text)
    for key, want in _EXPECTED.items():
        have = got.get(key)
        if have is None:
            return f"the library does not list its {key}"
        if have == want:
            continue
        k = next(
            (k for k, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want))
        )
        a = have[k] if k < len(have) else "(end)"
        b = want[k] if k < len(want) else "(end)"
        return f"{key} differ at position {k}: the library has {a!r}, Python has {b!r}"
    return None
