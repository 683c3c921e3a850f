"""The native kernel's operators as the compiler sees them: fake shapes.

The library defines ``torch.ops.lstmlens_native.{lstm,gru,rnn}_{forward,backward}`` in C++
(``ops.cpp``, CPU kernels), with a C++ autograd kernel for each forward op (``autograd.h``):
the forward run with ``train=True`` returns ``(out, h_n[, c_n], *saved)``; the autograd kernel
keeps the inputs and those outputs, marks the saved ones non-differentiable, and its backward
calls the matching ``*_backward`` op. Without a graph to record (grad mode off, or nothing
requiring grad) it calls the kernel at the cost of one C++ check, so eager inference under
``torch.no_grad`` and compiled inference graphs pay nothing for autograd. (A Python autograd
kernel, ``torch.library.register_autograd``, costs tens of microseconds a call even under
``no_grad``: more than ``torch.compile`` saves on a small model.)

:func:`ready` adds, once the library is loaded, what ``torch.compile`` and ``torch.export`` need
besides: a fake (meta) implementation of every op, giving the exact shapes and dtypes the
kernel returns (``torch.library.register_fake``), so a trace never runs the kernel.

Shapes (LSTM, config ``cfg`` as in :mod:`.abi`): ``H`` cells, ``P`` = proj_size or H,
``G`` = H * (gate blocks), ``S`` = H * (sigmoid gates). Forward, ``train=False``:
``out (T, B, P), h_n (B, P), c_n (B, H)``; ``train=True`` adds ``c (T+1, B, H)``,
``c_new (T, B, H)`` with a cell keep mask else empty, ``gates (T, B, G)``, ``y (T, B, H)``,
with layer norm ``xn, rn (T, B, G)``, ``rstd_x, rstd_r, rstd_c (T, B, 1)``, ``c_norm (T, B, H)``,
with full gate recurrence ``sig (T, B, S)`` (empty ``(0,)`` when absent). Backward returns
``dx`` like ``x``, ``dh0 (B, P)``, ``dc0 (B, H)`` and one gradient shaped like each weight slot.
GRU / RNN: ``out (T, B, H), h_n (B, H)``, saved GRU ``gates (T, B, 3H), hn (T, B, H)``, RNN
``acts (T, B, H)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import loader
from .abi import LSTM_CONFIG, LSTM_SAVED

__all__ = ["ready"]

_NS = "lstmlens_native"
_CFG = {name: k for k, name in enumerate(LSTM_CONFIG)}
_registered = False


@torch.compiler.assume_constant_result
def ready() -> bool:
    """Whether the kernel is loaded, with its fake registrations (done once).

    Marked a constant for ``torch.compile``: a trace calls it eagerly (building the kernel on
    the first call, as eager code does) and bakes the answer into the graph.
    """
    global _registered
    if not loader.status().ok:
        return False
    if not _registered:
        _register()
        _registered = True
    return True


# -- fake implementations -------------------------------------------------------------------------


def _lstm_dims(cfg: list[int]) -> tuple[int, int, int, int]:
    """``(H, P, G, S)`` of an LSTM config (see ``layout.h``)."""
    H = cfg[_CFG["hidden_size"]]
    P = cfg[_CFG["proj_size"]] or H
    sigmoid = cfg[_CFG["has_i"]] + cfg[_CFG["has_f"]] + cfg[_CFG["has_o"]]
    return H, P, H * (sigmoid + 1), H * sigmoid


def _lstm_forward_fake(x, h0, c0, w, cfg, keep_h, keep_c, rmask, train):
    T, B = x.shape[0], x.shape[1]
    H, P, G, S = _lstm_dims(cfg)
    res = [x.new_empty(T, B, P), x.new_empty(B, P), x.new_empty(B, H)]
    if not train:
        return res
    ln, fgr = cfg[_CFG["layer_norm"]], cfg[_CFG["full_gate_recurrence"]]
    none = x.new_empty(0)
    shapes = {
        "c": (T + 1, B, H),
        "c_new": (T, B, H) if keep_c is not None else None,
        "gates": (T, B, G),
        "y": (T, B, H),
        "xn": (T, B, G) if ln else None,
        "rstd_x": (T, B, 1) if ln else None,
        "rn": (T, B, G) if ln else None,
        "rstd_r": (T, B, 1) if ln else None,
        "c_norm": (T, B, H) if ln else None,
        "rstd_c": (T, B, 1) if ln else None,
        "sig": (T, B, S) if fgr else None,
    }
    for name in LSTM_SAVED[3:]:
        res.append(none.clone() if shapes[name] is None else x.new_empty(shapes[name]))
    return res


def _lstm_backward_fake(x, h0, w, cfg, keep_h, keep_c, rmask, saved, d_out, d_hn, d_cn):
    H, P, _, _ = _lstm_dims(cfg)
    B = x.shape[1]
    return [torch.empty_like(x), x.new_empty(B, P), x.new_empty(B, H)] + [
        torch.empty_like(t) for t in w
    ]


def _simple_forward_fake(gates: int, x, h0, w, keep_h, train, extra: bool):
    T, B, H = x.shape[0], x.shape[1], h0.shape[1]
    res = [x.new_empty(T, B, H), x.new_empty(B, H)]
    if train:
        res.append(x.new_empty(T, B, gates * H))
        if extra:
            res.append(x.new_empty(T, B, H))
    return res


def _gru_forward_fake(x, h0, w, keep_h, train):
    return _simple_forward_fake(3, x, h0, w, keep_h, train, extra=True)


def _rnn_forward_fake(x, h0, w, keep_h, relu, train):
    return _simple_forward_fake(1, x, h0, w, keep_h, train, extra=False)


def _simple_backward_fake(x, h0, w):
    return [torch.empty_like(x), torch.empty_like(h0)] + [torch.empty_like(t) for t in w]


def _gru_backward_fake(x, h0, w, keep_h, saved, d_out, d_hn):
    return _simple_backward_fake(x, h0, w)


def _rnn_backward_fake(x, h0, w, keep_h, relu, saved, d_out, d_hn):
    return _simple_backward_fake(x, h0, w)


#: op -> its fake implementation
_FAKES: dict[str, Callable[..., Any]] = {
    "lstm_forward": _lstm_forward_fake,
    "lstm_backward": _lstm_backward_fake,
    "gru_forward": _gru_forward_fake,
    "gru_backward": _gru_backward_fake,
    "rnn_forward": _rnn_forward_fake,
    "rnn_backward": _rnn_backward_fake,
}


def _register() -> None:
    for name, fake in _FAKES.items():
        torch.library.register_fake(f"{_NS}::{name}", fake)
