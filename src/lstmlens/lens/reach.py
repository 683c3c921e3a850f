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

__all__ = ["memory_reach"]


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
    if not target.bidirectional:
        inp = inp[: t + 1]  # later steps cannot reach back to t; a reverse direction reads them
    training = target.training
    target.eval()
    try:
        with torch.enable_grad():
            out_size = (target.proj_size or target.hidden_size) * target.num_directions
            copies = inp.unsqueeze(1).repeat(1, out_size, 1).requires_grad_(True)  # (T, D, I)
            xin = copies.transpose(0, 1) if target.batch_first else copies
            out, _ = target(xin)
            out = out.transpose(0, 1) if target.batch_first else out  # (T, D, D)
            unit = torch.arange(out_size, device=out.device)
            out[t, unit, unit].sum().backward()
    finally:
        target.train(training)
    grad = copies.grad[: t + 1]  # (t+1, D, I): row s, copy d = d y_t[d] / d x_s
    norms = grad.double().pow(2).sum(dim=(1, 2)).sqrt()  # (t+1,) by step s
    return norms.flip(0).cpu().numpy()  # index k = t - s
