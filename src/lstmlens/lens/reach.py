r"""Memory reach: how strongly the output at step t still depends on the input k steps back.

For one sequence fed to a recurrent module (an :class:`~lstmlens.LSTM` of any variant, a
``GRU``, an ``RNN``, or a model containing one), with ``x_s`` the module's input at step s
(shape ``(I,)``) and ``y_t`` the top layer's output at step t (shape ``(D,)``, D = H, the
projection size, or twice that when bidirectional):

.. math::

    \mathrm{reach}_k = \left\lVert \frac{\partial y_t}{\partial x_{t-k}} \right\rVert_F,
    \qquad k = 0, \dots, t

The vanishing gradient of a plain RNN shows as a reach falling by orders of magnitude within
tens of steps; a trained LSTM's forget gate keeps it up (Hochreiter & Schmidhuber 1997).

In a task model the module's input is whatever the model feeds it (an embedding, features):
the model is run once to capture that input, then the module alone is differentiated. The
whole Jacobian takes one backward pass: the sequence is copied D times along the batch and
copy d back-propagates output unit d.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..recurrent import RecurrentBase
from .trace import _find_module

__all__ = ["memory_reach", "trace_reach"]


def _captured_input(model: nn.Module, module: RecurrentBase, x: Any) -> Tensor:
    """The module's input (T, I) when ``model(x)`` runs on one sequence."""
    seen: list[Any] = []
    handle = module.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*x) if isinstance(x, tuple) else model(x)
    finally:
        handle.remove()
        for m, training in modes.items():
            m.train(training)
    if not seen:
        raise ValueError(f"memory_reach: {type(model).__name__} never called its recurrent layer")
    inp = seen[-1]
    if isinstance(inp, PackedSequence):
        inp, _ = pad_packed_sequence(inp, batch_first=module.batch_first)
    if inp.dim() == 2:
        return inp.detach()  # (T, I) unbatched
    batch = inp.shape[0] if module.batch_first else inp.shape[1]
    if batch != 1:
        raise ValueError(
            f"memory_reach: expected one sequence (a batch of 1), got a batch of {batch}"
        )
    return (inp[0] if module.batch_first else inp[:, 0]).detach()  # (T, I)


def memory_reach(
    model: nn.Module, x: Any, t: int, *, module: nn.Module | None = None
) -> np.ndarray:
    """The Frobenius norm of d(top-layer output at ``t``) / d(input at ``t - k``), k = 0..t.

    Args:
        model: an LSTM / GRU / RNN of lstmlens, or a model containing one (``module`` picks
            which when there are several; default the first).
        x: what ``model`` takes, for one sequence: ``(T, I)``, ``(1, T, I)`` / ``(T, 1, I)``
            for a bare layer, token ids ``(1, T)`` for a text model; a tuple is unpacked.
        t: the output step, ``0 <= t < T`` (negative counts from the end).

    Returns:
        float64 array ``(t + 1,)``: index k is the lag.
    """
    target = _find_module(model, module)
    if not isinstance(t, (int, np.integer)) or isinstance(t, bool):
        raise TypeError(f"memory_reach: t must be an int, got {type(t).__name__}")
    inp = _captured_input(model, target, x)  # (T, I)
    steps = inp.shape[0]
    if not -steps <= t < steps:
        raise ValueError(f"memory_reach: t must be in [{-steps}, {steps}), got {t}")
    t = int(t) % steps
    return _norms(target, inp, t)


def _norms(module: RecurrentBase, inp: Tensor, t: int, first: int = 0) -> np.ndarray:
    """reach_k of ``module`` on one sequence ``inp`` (T, I) for k = 0..t - first.

    With ``first > 0`` the steps before it run without gradients and hand their state on
    (exact for a unidirectional module that carries its whole state in ``(h, c)``).
    """
    if module.bidirectional:
        first = 0  # the reverse direction reads the whole sequence
    else:
        inp = inp[: t + 1]  # later steps cannot reach back to t
    out_size = (module.proj_size or module.hidden_size) * module.num_directions
    training = module.training
    module.eval()
    try:
        state = None
        if first > 0:
            with torch.no_grad():
                head = inp[:first].unsqueeze(1)  # (first, 1, I)
                _, state = module(head.transpose(0, 1) if module.batch_first else head)
            expand = lambda s: s.repeat(1, out_size, 1)  # noqa: E731  (L*D, 1, H) -> (L*D, D, H)
            state = tuple(map(expand, state)) if isinstance(state, tuple) else expand(state)
        with torch.enable_grad():
            copies = inp[first:].unsqueeze(1).repeat(1, out_size, 1).requires_grad_(True)
            xin = copies.transpose(0, 1) if module.batch_first else copies  # (T', D, I)
            out, _ = module(xin, state)
            out = out.transpose(0, 1) if module.batch_first else out  # (T', D, D)
            unit = torch.arange(out_size, device=out.device)
            out[t - first, unit, unit].sum().backward()
    finally:
        module.train(training)
    assert copies.grad is not None  # filled by the backward passes above
    grad = copies.grad[: t - first + 1]  # (t'+1, D, I): row s, copy d = d y_t[d] / d x_s
    norms = grad.double().pow(2).sum(dim=(1, 2)).sqrt()  # by step s
    return norms.flip(0).cpu().numpy()  # index k = t - s


def trace_reach(
    trace: Any, steps: Any, *, max_lag: int = 200, batch_index: int = 0
) -> dict[int, np.ndarray]:
    """reach_k, k = 0..min(t, max_lag), at each output step t of ``steps``, from a lens trace.

    Uses the module and the input the trace recorded (``trace.module``, ``trace.inputs``);
    returns ``{}`` when it has neither (a packed input, a trace-like object). Exact: the
    steps before ``t - max_lag`` run without gradients and hand their state on (a
    full-gate-recurrence LSTM, whose gate state is not handed on, is differentiated whole).
    """
    module, x = getattr(trace, "module", None), getattr(trace, "inputs", None)
    if module is None or x is None:
        return {}
    if x.dim() == 3:
        x = x[batch_index] if module.batch_first else x[:, batch_index]  # (T, I)
    whole = getattr(getattr(module, "variant", None), "full_gate_recurrence", False)
    out = {}
    for t in steps:
        first = 0 if whole else max(0, int(t) - max_lag)
        out[int(t)] = _norms(module, x.detach(), int(t), first)
    return out
