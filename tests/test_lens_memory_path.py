"""memory_path: d(memory at t) / d(memory at t - k) equals a finite-difference estimate (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlens import GRU, LSTM, RNN
from lstmlens.lens.memory_path import memory_name, memory_path


def _memory(layer, state, top: int) -> torch.Tensor:
    return (state[1] if memory_name(layer) == "c" else state)[top, 0]  # (H,)


def _finite_difference(layer, x: torch.Tensor, t: int, eps: float = 1e-6) -> np.ndarray:
    """path_k by central differences: nudge each unit of the top layer's memory after step s,
    hold the rest of the state, run on to step t (x (T, I) unbatched, batch of 1 inside)."""
    top, cell = layer.num_layers - 1, memory_name(layer) == "c"
    xb = x.unsqueeze(1)  # (T, 1, I)
    norms = []
    with torch.no_grad():
        for s in range(t + 1):
            _, state = layer(xb[: s + 1])
            size = _memory(layer, state, top).shape[0]
            jac = np.zeros((size, size))
            for j in range(size):
                ends = []
                for sign in (1.0, -1.0):
                    memory = (state[1] if cell else state).clone()
                    memory[top, 0, j] += sign * eps
                    nudged = (state[0], memory) if cell else memory
                    after = layer(xb[s + 1 : t + 1], nudged)[1] if s < t else nudged
                    ends.append(_memory(layer, after, top).numpy())
                jac[:, j] = (ends[0] - ends[1]) / (2 * eps)
            norms.append(np.sqrt((jac**2).sum()))
    return np.array(norms[::-1])


LAYERS = {
    "vanilla": lambda: LSTM(3, 4),
    "peephole": lambda: LSTM(3, 4, variant="peephole"),
    "cifg": lambda: LSTM(3, 4, variant="cifg"),
    "two layers, projection": lambda: LSTM(3, 5, num_layers=2, proj_size=2),
    "gru": lambda: GRU(3, 4),
    "rnn, two layers": lambda: RNN(3, 4, num_layers=2),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_memory_path_equals_finite_differences(name):
    torch.manual_seed(0)
    layer = LAYERS[name]().double().eval()
    x = torch.randn(7, 3, dtype=torch.float64)  # (T, I) unbatched
    path = memory_path(layer, x, 5)
    assert path.shape == (6,) and path.dtype == np.float64
    assert path[0] == pytest.approx(np.sqrt(layer.hidden_size))  # the identity
    np.testing.assert_allclose(path, _finite_difference(layer, x, 5), rtol=1e-6, atol=1e-10)


def test_batch_first_and_a_task_model_give_the_same_path():
    from lstmlens.tasks.longrange import AddingProblem
    from lstmlens.tasks.longrange_compare import LongRangeModel

    torch.manual_seed(1)
    model = LongRangeModel(AddingProblem(9), "lstm", 4).double()
    x = AddingProblem(9).sample(1, torch.Generator().manual_seed(0)).inputs.double()  # (1, 9, 2)
    np.testing.assert_allclose(memory_path(model, x, -1), memory_path(model.rnn, x, 8), rtol=1e-12)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="bidirectional"):
        memory_path(LSTM(3, 4, bidirectional=True), torch.randn(5, 3), 1)
    with pytest.raises(ValueError, match="t must be in"):
        memory_path(RNN(3, 4), torch.randn(5, 3), 5)
    with pytest.raises(TypeError, match="t must be an int"):
        memory_path(GRU(3, 4), torch.randn(5, 3), 1.0)
