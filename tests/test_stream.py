"""Streaming one step at a time gives exactly what the whole sequence at once gives."""

import pytest
import torch

import lstmlens
from lstmlens.stream import Stream


def _models():
    torch.manual_seed(0)
    yield lstmlens.LSTM(3, 5, num_layers=2, backend="reference").double()
    yield lstmlens.LSTM(3, 6, 2, variant="fgr", layer_norm=True, proj_size=4).double()
    yield lstmlens.LSTM(3, 5, variant="cifg", batch_first=True).double()
    yield lstmlens.GRU(3, 5, num_layers=2).double()
    yield lstmlens.RNN(3, 5, num_layers=2, nonlinearity="relu").double()


@pytest.mark.parametrize("model", list(_models()), ids=lambda m: f"{m.mode}-{m.extra_repr()}")
def test_stepping_equals_the_whole_sequence(model):
    model.eval()
    x = torch.randn(7, 2, 3, dtype=torch.double)  # (T, B, I)
    out, hx = model(x.transpose(0, 1) if model.batch_first else x)
    out = out.transpose(0, 1) if model.batch_first else out
    stream = Stream(model)
    steps = torch.stack([stream.step(x[t]) for t in range(7)])
    torch.testing.assert_close(steps, out, rtol=1e-12, atol=1e-12)
    for got, want in zip(stream.state if isinstance(hx, tuple) else (stream.state,),
                         hx if isinstance(hx, tuple) else (hx,)):  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    stream.reset()  # a new sequence starts from zeros again
    torch.testing.assert_close(stream.step(x[0]), out[0], rtol=1e-12, atol=1e-12)


def test_initial_state_and_unbatched_steps():
    model = lstmlens.LSTM(3, 4, num_layers=2).double().eval()
    x = torch.randn(5, 3, dtype=torch.double)  # unbatched (T, I)
    h0, c0 = torch.randn(2, 4, dtype=torch.double), torch.randn(2, 4, dtype=torch.double)
    out, (h, c) = model(x, (h0, c0))
    stream = Stream(model, (h0, c0))
    steps = torch.stack([stream.step(x[t]) for t in range(5)])
    assert steps.shape == (5, 4)
    torch.testing.assert_close(steps, out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(stream.state[1], c, rtol=1e-12, atol=1e-12)


def test_stream_errors():
    with pytest.raises(TypeError, match="Stream: expected an lstmlens"):
        Stream(torch.nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="Stream: a bidirectional model"):
        Stream(lstmlens.LSTM(3, 4, bidirectional=True))
    stream = Stream(lstmlens.LSTM(3, 4))
    with pytest.raises(ValueError, match=r"Stream.step: expected x of shape \(I,\)"):
        stream.step(torch.randn(2, 5))
    stream.step(torch.randn(2, 3))
    with pytest.raises(ValueError, match="batch shape changed"):
        stream.step(torch.randn(3, 3))
    with pytest.raises(ValueError, match="Stream: the state must be"):
        Stream(lstmlens.LSTM(3, 4), (torch.zeros(2, 1, 4), torch.zeros(2, 1, 4))).step(
            torch.randn(1, 3)
        )
