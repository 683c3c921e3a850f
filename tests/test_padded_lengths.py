"""A padded batch with ``lengths`` means what the packed batch means: ``layer(x, lengths=n)``
equals ``layer(pack_padded_sequence(x, n))`` (output padded with zeros, final states, gradients)
for every mode and option; bad lengths get one-line errors naming the layer."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmlens

T, B, I, H = 6, 4, 3, 5  # noqa: E741
LENGTHS = torch.tensor([6, 2, 4, 1])
CASES = [
    ("LSTM", {}),
    ("LSTM", {"variant": "cifg", "bidirectional": True}),
    ("LSTM", {"num_layers": 2, "proj_size": 2, "layer_norm": True}),
    ("GRU", {"bidirectional": True}),
    ("RNN", {"num_layers": 2}),
]


def _run(layer, x, packed: bool):
    xi = x.clone().requires_grad_()
    if packed:
        out, state = layer(
            pack_padded_sequence(xi, LENGTHS, batch_first=True, enforce_sorted=False)
        )
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    else:
        out, state = layer(xi, lengths=LENGTHS)
    h = state[0] if isinstance(state, tuple) else state
    layer.zero_grad()
    ((out**2).sum() + (h**3).sum()).backward()
    return out.detach(), h.detach(), xi.grad, [p.grad.clone() for p in layer.parameters()]


@pytest.mark.parametrize("backend", ["native", "fused"])
@pytest.mark.parametrize("mode,options", CASES)
def test_padded_with_lengths_equals_packed(mode, options, backend):
    torch.manual_seed(0)
    layer = getattr(lstmlens, mode)(I, H, batch_first=True, backend=backend, **options)
    x = torch.randn(B, T, I, dtype=torch.float64)
    layer = layer.double()
    want, got = _run(layer, x, packed=True), _run(layer, x, packed=False)
    for a, b in zip(got[:3], want[:3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    for a, b in zip(got[3], want[3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    assert (got[0][1, 2:] == 0).all()  # zeros past each length, as pad_packed_sequence gives


def test_full_lengths_equal_no_lengths_and_the_trace_keeps_them():
    torch.manual_seed(0)
    layer = lstmlens.LSTM(I, H, batch_first=True)
    x = torch.randn(B, T, I)
    out, _ = layer(x, lengths=torch.full((B,), T))
    torch.testing.assert_close(out, layer(x)[0])
    trace = lstmlens.inspect(layer, x, lengths=LENGTHS)
    assert trace.lengths.tolist() == LENGTHS.tolist()


@pytest.mark.parametrize(
    "x,lengths,error,message",
    [
        (torch.randn(B, T, I), torch.tensor([6, 2, 4]), ValueError, r"shape \(4,\)"),
        (torch.randn(B, T, I), torch.tensor([6, 2, 4, 0]), ValueError, r"in \[1, 6\]"),
        (torch.randn(B, T, I), torch.tensor([6, 2, 4, 7]), ValueError, r"in \[1, 6\]"),
        (torch.randn(B, T, I), torch.tensor([6.0, 2, 4, 1]), TypeError, "integer tensor"),
        (torch.randn(T, I), torch.tensor([3]), ValueError, "batched"),
    ],
)
def test_bad_lengths_are_one_line_errors(x, lengths, error, message):
    layer = lstmlens.LSTM(I, H, batch_first=True)
    with pytest.raises(error, match=f"LSTM: .*{message}"):
        layer(x, lengths=lengths)
    packed = pack_padded_sequence(
        torch.randn(B, T, I), LENGTHS, batch_first=True, enforce_sorted=False
    )
    with pytest.raises(ValueError, match="not a PackedSequence"):
        layer(packed, lengths=LENGTHS)
