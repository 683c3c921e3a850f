"""memory_reach: the Jacobian norms equal a brute-force finite-difference estimate (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmlens
from lstmlens import GRU, LSTM, RNN
from lstmlens.lens import memory_reach
from lstmlens.tasks.language import LanguageModel


def _finite_difference(layer, x: torch.Tensor, t: int, eps: float = 1e-6) -> np.ndarray:
    """reach_k by central differences: perturb each input number of x (T, I) in turn."""
    steps, size = x.shape
    jac = np.zeros((steps, size, layer(x)[0].shape[-1]))
    with torch.no_grad():
        for s in range(steps):
            for i in range(size):
                up, down = x.clone(), x.clone()
                up[s, i] += eps
                down[s, i] -= eps
                jac[s, i] = ((layer(up)[0][t] - layer(down)[0][t]) / (2 * eps)).numpy()
    return np.sqrt((jac[: t + 1] ** 2).sum(axis=(1, 2)))[::-1]


LAYERS = {
    "vanilla": lambda: LSTM(3, 4),
    "peephole": lambda: LSTM(3, 4, variant="peephole"),
    "cifg": lambda: LSTM(3, 4, variant="cifg"),
    "two layers, projection": lambda: LSTM(3, 5, num_layers=2, proj_size=2),
    "gru": lambda: GRU(3, 4),
    "rnn": lambda: RNN(3, 4),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_memory_reach_equals_finite_differences(name):
    torch.manual_seed(0)
    layer = LAYERS[name]().double().eval()
    x = torch.randn(7, 3, dtype=torch.float64)  # (T, I) unbatched
    t = 5
    reach = memory_reach(layer, x, t)
    assert reach.shape == (t + 1,) and reach.dtype == np.float64
    np.testing.assert_allclose(reach, _finite_difference(layer, x, t), rtol=1e-6, atol=1e-10)


def test_batched_and_batch_first_inputs_give_the_same_reach():
    torch.manual_seed(1)
    layer = LSTM(3, 4).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    expected = memory_reach(layer, x, 4)
    np.testing.assert_allclose(memory_reach(layer, x.unsqueeze(1), 4), expected, rtol=1e-12)
    first = LSTM(3, 4, batch_first=True).double()
    first.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(memory_reach(first, x.unsqueeze(0), -2), expected, rtol=1e-12)


def test_a_task_model_is_differentiated_at_its_recurrent_layer():
    from lstmlens.data.text import build_tokenizer

    torch.manual_seed(2)
    model = LanguageModel(build_tokenizer("abcab", "char"), embed_size=4, hidden_size=6)
    model = model.double()
    ids = torch.tensor([[0, 1, 2, 0, 1]])
    reach = memory_reach(model, ids, 4)
    assert reach.shape == (5,) and np.all(reach > 0)
    embedded = model.embedding(ids[0]).detach()  # (T, E): what the LSTM reads
    np.testing.assert_allclose(reach, memory_reach(model.lstm, embedded, 4), rtol=1e-12)


def test_bad_input_names_the_problem():
    layer = LSTM(3, 4)
    with pytest.raises(ValueError, match="batch of 1"):
        memory_reach(layer, torch.randn(5, 2, 3), 1)
    with pytest.raises(ValueError, match="t must be in"):
        memory_reach(layer, torch.randn(5, 3), 5)
    with pytest.raises(TypeError, match="t must be an int"):
        memory_reach(layer, torch.randn(5, 3), 1.5)
    with pytest.raises(TypeError, match="LSTM/GRU/RNN"):
        memory_reach(torch.nn.Linear(3, 3), torch.randn(5, 3), 1)


@pytest.mark.parametrize("name", ["vanilla", "gru", "two layers, projection"])
def test_trace_reach_hands_the_state_on_exactly(name):
    from lstmlens.lens.reach import trace_reach

    torch.manual_seed(3)
    layer = LAYERS[name]().double()
    x = torch.randn(12, 1, 3, dtype=torch.float64)  # (T, 1, I)
    trace = lstmlens.inspect(layer, x)
    got = trace_reach(trace, [11, 4], max_lag=5)
    assert sorted(got) == [4, 11]
    np.testing.assert_allclose(got[11], memory_reach(layer, x, 11)[:6], rtol=1e-10)
    np.testing.assert_allclose(got[4], memory_reach(layer, x, 4), rtol=1e-10)
