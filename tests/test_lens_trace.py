"""The trace records what the cell used: the equations hold on the recorded gates alone."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlens
from lstmlens.variants import PRESETS


@pytest.mark.parametrize("variant", list(PRESETS))
def test_equations_hold_on_the_trace(variant):
    torch.manual_seed(0)
    m = lstmlens.LSTM(
        3, 5, num_layers=2, variant=variant, bidirectional=True, forget_bias=0.0
    ).double()
    x = torch.randn(7, 2, 3, dtype=torch.double)
    trace = lstmlens.inspect(m, x)
    out, (h_n, c_n) = m(x)
    v = m.variant
    for layer in range(2):
        for d in range(2):
            g = trace.gates(layer, d)
            i, f, cand, o, c, h = (
                g[k] for k in ("input", "forget", "candidate", "output", "cell", "hidden")
            )
            steps = range(7) if d == 0 else range(6, -1, -1)
            c_prev = torch.zeros_like(c[0])
            for t in steps:
                torch.testing.assert_close(
                    c[t], f[t] * c_prev + i[t] * cand[t], rtol=1e-6, atol=1e-6
                )
                act = torch.tanh(c[t]) if v.output_activation == "tanh" else c[t]
                torch.testing.assert_close(h[t], o[t] * act, rtol=1e-6, atol=1e-6)
                c_prev = c[t]
            if not v.has_i:
                assert torch.equal(i, torch.ones_like(i))
            if not v.forget_gate:
                assert torch.equal(f, torch.ones_like(f))
            if v.coupled:
                torch.testing.assert_close(f, 1 - i)
            if not v.has_o:
                assert torch.equal(o, torch.ones_like(o))
            k = layer * 2 + d
            last = 6 if d == 0 else 0
            torch.testing.assert_close(h[last], h_n[k])
            torch.testing.assert_close(c[last], c_n[k])
        # the recorded hidden states are the layer's output
    torch.testing.assert_close(
        torch.cat([trace.gate("hidden", 1, 0), trace.gate("hidden", 1, 1)], -1), out
    )
    torch.testing.assert_close(trace.output[0], out)


def test_trace_shapes_follow_the_layer():
    m = lstmlens.LSTM(3, 4, batch_first=True)
    assert lstmlens.inspect(m, torch.randn(2, 6, 3)).gate("forget").shape == (2, 6, 4)
    assert lstmlens.inspect(m, torch.randn(6, 3)).gate("use").shape == (6, 4)
    gru = lstmlens.GRU(3, 4)
    t = lstmlens.inspect(gru, torch.randn(6, 2, 3))
    assert t.gate_names == ("reset", "update", "candidate", "hidden")
    z, n, h = t.gate("update"), t.gate("candidate"), t.gate("hidden")
    h_prev = torch.cat([torch.zeros(1, 2, 4), h[:-1]])
    torch.testing.assert_close(h, (1 - z) * n + z * h_prev, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"Trace.gate: unknown gate 'forget' for a GRU"):
        t.gate("forget")


def test_trace_on_a_model_and_packed_input_restores_mode():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = lstmlens.LSTM(3, 4, zoneout=0.5)
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            out, (h, _) = self.rnn(x)
            return self.head(h[-1])

    model = Model().train()
    x = torch.randn(5, 3, 3)
    lengths = torch.tensor([2, 5, 3])
    trace = lstmlens.inspect(model, pack_padded_sequence(x, lengths, enforce_sorted=False))
    assert model.training and model.rnn.training and model.rnn._recorder is None
    assert trace.lengths.tolist() == [2, 5, 3]
    h = trace.gate("hidden")
    model.eval()
    out, (h_n, _) = model.rnn(pack_padded_sequence(x, lengths, enforce_sorted=False))
    for b, n in enumerate([2, 5, 3]):
        torch.testing.assert_close(h[n - 1, b], h_n[0, b])
    with pytest.raises(
        TypeError,
        match=r"inspect: expected a lstmlens LSTM/GRU/RNN or a model containing one, got LSTM",
    ):
        lstmlens.inspect(nn.LSTM(3, 4), x)
