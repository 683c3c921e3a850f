"""Cells: equal to torch's cells, and running a layer equals stepping its cell by hand."""

import pytest
import torch
from torch import nn

import lstmlens
from lstmlens.variants import PRESETS


@pytest.mark.parametrize("variant", list(PRESETS))
@pytest.mark.parametrize("layer_norm", [False, True])
def test_layer_equals_stepping_the_cell(variant, layer_norm):
    torch.manual_seed(0)
    layer = lstmlens.LSTM(3, 4, variant=variant, layer_norm=layer_norm).double()
    cell = lstmlens.LSTMCell(3, 4, variant=variant, layer_norm=layer_norm).double()
    cell.load_state_dict(layer.layer_parameters(0, 0))
    x = torch.randn(5, 2, 3, dtype=torch.double)
    h, c = torch.randn(2, 4, dtype=torch.double), torch.randn(2, 4, dtype=torch.double)
    out, (h_n, c_n) = layer(x, (h[None], c[None]))
    state = (h, c)
    for t in range(5):
        state = cell(x[t], state)
        torch.testing.assert_close(out[t], state[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n[0], state[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c_n[0], state[1], rtol=1e-12, atol=1e-12)
    assert len(state) == (3 if variant == "fgr" else 2)


def test_cells_match_torch_cells():
    x = torch.randn(4, 3, dtype=torch.double)
    h = torch.randn(4, 5, dtype=torch.double)
    pairs = [
        (nn.LSTMCell(3, 5), lstmlens.LSTMCell),
        (nn.GRUCell(3, 5), lstmlens.GRUCell),
        (nn.RNNCell(3, 5, nonlinearity="relu"), lstmlens.RNNCell),
    ]
    for theirs, cls in pairs:
        theirs = theirs.double()
        kw = {"nonlinearity": "relu"} if cls is lstmlens.RNNCell else {}
        ours = cls(3, 5, **kw).double()
        ours.load_state_dict(theirs.state_dict())
        state = (h, h.cos()) if cls is lstmlens.LSTMCell else h
        a, b = theirs(x, state), ours(x, state)
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            torch.testing.assert_close(v, u, rtol=1e-12, atol=1e-12)
        # unbatched, no state
        a, b = theirs(x[0]), ours(x[0])
        torch.testing.assert_close(
            b[0] if isinstance(b, tuple) else b, a[0] if isinstance(a, tuple) else a
        )


def test_forget_bias_is_added_to_the_forget_rows():
    torch.manual_seed(0)
    plain = lstmlens.LSTM(2, 3, 2)
    torch.manual_seed(0)
    biased = lstmlens.LSTM(2, 3, 2, forget_bias=1.0)
    for layer in range(2):
        a, b = plain.layer_parameters(layer)["bias_ih"], biased.layer_parameters(layer)["bias_ih"]
        torch.testing.assert_close(b[3:6] - a[3:6], torch.ones(3))
        torch.testing.assert_close(b[:3], a[:3])
        torch.testing.assert_close(b[6:], a[6:])
    cifg = lstmlens.LSTM(2, 3, variant="cifg", forget_bias=0.0)
    assert cifg.weight_ih_l0.shape == (9, 2)
    with pytest.raises(ValueError, match="LSTM: forget_bias needs a forget gate"):
        lstmlens.LSTM(2, 3, variant="cifg", forget_bias=1.0)
