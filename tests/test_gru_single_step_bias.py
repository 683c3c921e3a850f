"""A GRU run on one step of one sequence leaves its parameters alone (the native kernel's input
projection once wrote into the bias: with T * B == 1 the expanded bias was already contiguous)."""

from __future__ import annotations

import pytest
import torch

from lstmlens import GRU, LSTM, RNN


@pytest.mark.parametrize("cls", [GRU, RNN, LSTM])
@pytest.mark.parametrize("steps", [1, 3])
def test_a_forward_pass_changes_no_parameter_and_matches_torch(cls, steps):
    torch.manual_seed(0)
    layer = cls(3, 4).double().eval()
    theirs = getattr(torch.nn, cls.__name__)(3, 4).double()
    theirs.load_state_dict(layer.state_dict())
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(steps, 1, 3, dtype=torch.float64)  # (T, B = 1, I)
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(layer(x)[0], theirs(x)[0], rtol=1e-10, atol=1e-12)
    for key, value in layer.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)
