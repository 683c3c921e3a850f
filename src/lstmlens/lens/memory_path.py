r"""The memory path: how much of the state k steps back still reaches the state at step t.

For one sequence fed to a unidirectional recurrent module, with ``m_s`` the top layer's
*memory* after step s (shape ``(H,)``): the cell state ``c_s`` of an LSTM (the constant error
carousel of Hochreiter & Schmidhuber 1997), the hidden state ``h_s`` of a GRU or a plain RNN
(their only state):

.. math::

    \mathrm{path}_k = \left\lVert \frac{\partial m_t}{\partial m_{t-k}} \right\rVert_F,
    \qquad k = 0, \dots, t

The derivative is partial: the rest of the state at step ``t - k`` (an LSTM's ``h``, the
other layers' states) and every input are held fixed, so it is the Jacobian of ``t - (t - k)``
applications of the recurrence, restricted to the memory. ``path_0`` is the identity's norm,
``sqrt(H)``; ``path_k / path_0`` is the root-mean-square of the Jacobian's singular values.

Which question it answers: :func:`~lstmlens.lens.memory_reach` asks whether the output at t
*depends on* the input k steps back, and a model that learned to ignore an input (an LSTM
keeping its input gate shut on an unmarked step of the adding problem) rightly shows little
reach there. The memory path asks whether the memory *can carry* anything over k steps,
whatever is written into it: the vanishing gradient of a plain RNN is this product of
Jacobians shrinking geometrically (Bengio et al. 1994, Pascanu et al. 2013), and an LSTM's
forget gate near 1 keeps its cell's product near 1. It is the quantity the classic
"vanishing gradient vs constant error carousel" picture draws.

It is computed exactly in one backward pass: the sequence runs one step at a time, and
after each step a zero tensor (a leaf) is added to the memory; the gradient of ``m_t`` with
respect to the leaf after step ``s`` is ``d m_t / d m_s`` with the rest held fixed. ``H``
copies of the sequence along the batch give the whole Jacobian (copy d back-propagates unit d).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..recurrent import RecurrentBase
from .reach import _captured_input
from .trace import _find_module

__all__ = ["memory_name", "memory_path", "no_path"]


def memory_name(module: nn.Module) -> str:
    """``"c"`` for an LSTM (its cell state is the memory), ``"h"`` for a GRU or an RNN."""
    return "c" if getattr(module, "mode", "") == "LSTM" else "h"


def no_path(module: nn.Module) -> str | None:
    """Why ``module`` has no single memory path (``None`` when it has one)."""
    if getattr(module, "bidirectional", False):
        return "a bidirectional layer has no single memory path"
    if getattr(getattr(module, "variant", None), "full_gate_recurrence", False):
        return (
            "the full-gate-recurrence LSTM carries its gates as state too; "
            "its memory is not (h, c) alone"
        )
    return None


def memory_path(model: nn.Module, x: Any, t: int, *, module: nn.Module | None = None) -> np.ndarray:
    """The Frobenius norm of d(memory at ``t``) / d(memory at ``t - k``), k = 0..t.

    Args:
        model: an LSTM / GRU / RNN of lstmlens, or a model containing one (``module`` picks
            which); it must be unidirectional, and an LSTM must hand its whole state on in
            ``(h, c)`` (not the full-gate-recurrence variant).
        x: what ``model`` takes, for one sequence (as :func:`~lstmlens.lens.memory_reach`).
        t: the step, ``0 <= t < T`` (negative counts from the end).

    Returns:
        float64 array ``(t + 1,)``: index k is the lag; ``[0]`` is ``sqrt(H)``.
    """
    target = _find_module(model, module)
    if not isinstance(t, (int, np.integer)) or isinstance(t, bool):
        raise TypeError(f"memory_path: t must be an int, got {type(t).__name__}")
    problem = no_path(target)
    if problem:
        raise ValueError(f"memory_path: {problem}")
    inp = _captured_input(model, target, x)  # (T, I)
    steps = inp.shape[0]
    if not -steps <= t < steps:
        raise ValueError(f"memory_path: t must be in [{-steps}, {steps}), got {t}")
    return _path_norms(target, inp, int(t) % steps)


def _path_norms(module: RecurrentBase, inp: Tensor, t: int) -> np.ndarray:
    """path_k of ``module`` on one sequence ``inp`` (T, I) for k = 0..t (module docstring)."""
    cell = memory_name(module) == "c"
    size, top = module.hidden_size, module.num_layers - 1
    copies = inp[: t + 1].unsqueeze(1).repeat(1, size, 1)  # (t+1, H, I): one copy per unit
    training = module.training
    module.eval()
    leaves: list[Tensor] = []
    try:
        with torch.enable_grad():
            state: Any = None
            memory = None
            for s in range(t + 1):
                step = copies[s : s + 1]  # (1, H, I)
                _, state = module(step.transpose(0, 1) if module.batch_first else step, state)
                memory = state[1] if cell else state  # (L, H, H)
                leaf = torch.zeros_like(memory[top], requires_grad=True)  # (H copies, H)
                leaves.append(leaf)
                layers = list(memory.unbind(0))
                layers[top] = layers[top] + leaf
                memory = torch.stack(layers)
                state = (state[0], memory) if cell else memory
            assert memory is not None
            unit = torch.arange(size, device=inp.device)
            grads = torch.autograd.grad(memory[top][unit, unit].sum(), leaves)
    finally:
        module.train(training)
    norms = torch.stack([g.double().pow(2).sum().sqrt() for g in grads])  # by step s
    return norms.flip(0).cpu().numpy()  # index k = t - s
