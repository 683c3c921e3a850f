"""lstmlens.LSTM / GRU / RNN equal torch.nn.LSTM / GRU / RNN: outputs, final states, all gradients."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import lstmlens
from kernel_backends import registered, usable

# torch's own CPU kernel says so for projections in float32; not our concern here
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
I, H, B, T = 3, 5, 3, 6


def _close(a, b, dtype, what):
    tol = TOL[dtype]
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"{what}: {m}")


def _run(m, x, hx, packed, lengths, batch_first):
    """Forward + backward through a fixed random-weighted loss; returns values and gradients."""
    xi = x.clone().requires_grad_()
    hxi = None if hx is None else tuple(t.clone().requires_grad_() for t in hx)
    inp = (
        pack_padded_sequence(xi, lengths, batch_first=batch_first, enforce_sorted=False)
        if packed
        else xi
    )
    call_hx = None if hxi is None else (hxi if len(hxi) == 2 else hxi[0])
    out, state = m(inp, call_hx)
    states = state if isinstance(state, tuple) else (state,)
    if packed:
        assert isinstance(out, PackedSequence)
        out = out.data
    g = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for s in states:
        loss = loss + (s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
    inputs = [xi, *(hxi or ()), *m.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return [out, *states], grads


def _compare(ours, theirs, x, hx, packed, lengths, batch_first, dtype):
    names = [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == names
    v1, g1 = _run(theirs, x, hx, packed, lengths, batch_first)
    v2, g2 = _run(ours, x, hx, packed, lengths, batch_first)
    for k, (a, b) in enumerate(zip(v1, v2)):
        _close(b, a, dtype, ["output", "h_n", "c_n"][k])
    labels = ["d input"] + [f"d hx[{k}]" for k in range(len(hx or ()))] + [f"d {n}" for n in names]
    for label, a, b in zip(labels, g1, g2):
        _close(b, a, dtype, label)


LSTM_CASES = [
    c
    for c in itertools.product(
        [1, 2, 3], [False, True], [False, True], [0, 2], [False, True], [False, True]
    )
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layers,bidir,batch_first,proj,packed,given_hx", LSTM_CASES)
def test_lstm_matches_torch(dtype, layers, bidir, batch_first, proj, packed, given_hx):
    torch.manual_seed(layers * 100 + bidir * 10 + proj)
    theirs = nn.LSTM(I, H, layers, batch_first=batch_first, bidirectional=bidir, proj_size=proj).to(
        dtype
    )
    ours = lstmlens.LSTM.from_torch(theirs)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype)
    lengths = torch.tensor([T, 2, 4])
    D = 2 if bidir else 1
    hx = None
    if given_hx:
        hx = (
            torch.randn(layers * D, B, proj or H, dtype=dtype),
            torch.randn(layers * D, B, H, dtype=dtype),
        )
    _compare(ours, theirs, x, hx, packed, lengths, batch_first, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "layers,bidir,proj,given_hx",
    list(itertools.product([1, 2], [False, True], [0, 2], [False, True])),
)
def test_lstm_unbatched_matches_torch(dtype, layers, bidir, proj, given_hx):
    torch.manual_seed(3)
    theirs = nn.LSTM(I, H, layers, bidirectional=bidir, proj_size=proj).to(dtype)
    ours = lstmlens.LSTM.from_torch(theirs)
    D = 2 if bidir else 1
    hx = (
        (torch.randn(layers * D, proj or H, dtype=dtype), torch.randn(layers * D, H, dtype=dtype))
        if given_hx
        else None
    )
    _compare(ours, theirs, torch.randn(T, I, dtype=dtype), hx, False, None, False, dtype)


SIMPLE_CASES = list(
    itertools.product([1, 2, 3], [False, True], [False, True], [False, True], [False, True])
)


@pytest.mark.parametrize("mode", ["GRU", "RNN_tanh", "RNN_relu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layers,bidir,batch_first,packed,given_hx", SIMPLE_CASES)
def test_gru_rnn_match_torch(mode, dtype, layers, bidir, batch_first, packed, given_hx):
    torch.manual_seed(layers + 10 * bidir)
    kw = dict(batch_first=batch_first, bidirectional=bidir)
    if mode == "GRU":
        theirs, cls = nn.GRU(I, H, layers, **kw), lstmlens.GRU
    else:
        theirs, cls = nn.RNN(I, H, layers, nonlinearity=mode[4:], **kw), lstmlens.RNN
    theirs = theirs.to(dtype)
    ours = cls.from_torch(theirs)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype)
    D = 2 if bidir else 1
    hx = (torch.randn(layers * D, B, H, dtype=dtype),) if given_hx else None
    _compare(ours, theirs, x, hx, packed, torch.tensor([T, 2, 4]), batch_first, dtype)


@pytest.mark.parametrize("cls", ["GRU", "RNN"])
def test_gru_rnn_unbatched(cls):
    theirs = getattr(nn, cls)(I, H, 2, bidirectional=True).double()
    ours = getattr(lstmlens, cls).from_torch(theirs)
    x = torch.randn(T, I, dtype=torch.double)
    _compare(
        ours, theirs, x, (torch.randn(4, H, dtype=torch.double),), False, None, False, torch.float64
    )


def assert_backend_matches_torch(backend):
    """Stacked, bidirectional, projected, packed LSTM / GRU / RNN on ``backend`` equal torch's."""
    lengths = torch.tensor([T, 1, 3])
    theirs = nn.LSTM(I, H, 2, bidirectional=True, proj_size=2).double()
    ours = lstmlens.LSTM.from_torch(theirs, backend=backend)
    x = torch.randn(T, B, I, dtype=torch.double)
    _compare(ours, theirs, x, None, True, lengths, False, torch.float64)
    assert ours.last_backend == backend
    for cls in ("GRU", "RNN"):
        theirs = getattr(nn, cls)(I, H, 2, bidirectional=True).double()
        ours = getattr(lstmlens, cls).from_torch(theirs, backend=backend)
        _compare(ours, theirs, x, None, True, lengths, False, torch.float64)


@pytest.mark.parametrize("backend", registered())
def test_every_backend_matches_torch(backend):
    assert_backend_matches_torch(usable(backend))


@pytest.mark.parametrize("backend", [*registered(), "auto"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_batch_of_zero_sequences_gives_torch_shaped_empty_outputs(mode, backend, batch_first):
    kw = {"proj_size": 2} if mode == "LSTM" else {}
    theirs = getattr(nn, mode)(I, H, 2, bidirectional=True, batch_first=batch_first, **kw)
    ours = getattr(lstmlens, mode).from_torch(
        theirs, backend=usable(backend) if backend != "auto" else backend
    )
    x = torch.randn((0, T, I) if batch_first else (T, 0, I), requires_grad=True)
    want, got = theirs(x), ours(x)
    assert got[0].shape == want[0].shape
    for a, b in zip(
        got[1] if mode == "LSTM" else [got[1]], want[1] if mode == "LSTM" else [want[1]]
    ):
        assert a.shape == b.shape
    got[0].sum().backward()  # an empty graph, but a graph
    assert x.grad is not None and x.grad.shape == x.shape
    with torch.no_grad():
        assert ours(x)[0].shape == want[0].shape


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_zero_steps_is_a_one_line_error_as_in_torch(mode):
    """torch refuses T = 0 ("Expected sequence length to be larger than 0"); so do we."""
    with pytest.raises(RuntimeError):
        getattr(nn, mode)(I, H)(torch.randn(0, B, I))
    with pytest.raises(ValueError, match=f"^{mode}: expected a sequence of at least one step"):
        getattr(lstmlens, mode)(I, H)(torch.randn(0, B, I))


def test_default_init_and_parameters_match_torch():
    torch.manual_seed(0)
    theirs = nn.LSTM(4, 8, 2, bidirectional=True, proj_size=3)
    torch.manual_seed(0)
    ours = lstmlens.LSTM(4, 8, 2, bidirectional=True, proj_size=3)
    for (n1, p1), (n2, p2) in zip(theirs.named_parameters(), ours.named_parameters()):
        assert n1 == n2 and p1.shape == p2.shape
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)


def test_to_torch_round_trip():
    ours = lstmlens.LSTM(4, 6, 2, batch_first=True, dropout=0.1, bidirectional=True)
    theirs = ours.to_torch()
    assert isinstance(theirs, nn.LSTM) and theirs.dropout == 0.1 and theirs.batch_first
    x = torch.randn(2, 5, 4)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], rtol=1e-6, atol=1e-6)
    gru = lstmlens.GRU(3, 4, 2)
    torch.testing.assert_close(
        gru.to_torch()(torch.randn(5, 2, 3).abs())[0].shape, torch.Size([5, 2, 4])
    )
    rnn = lstmlens.RNN(3, 4, nonlinearity="relu")
    assert rnn.to_torch().nonlinearity == "relu"


def test_dropout_between_layers_is_torchs_dropout():
    """With the same RNG state, dropout between layers draws the same masks as torch's CPU LSTM."""
    theirs = nn.LSTM(3, 4, 3, dropout=0.5).double()
    ours = lstmlens.LSTM.from_torch(theirs)
    x = torch.randn(5, 2, 3, dtype=torch.double)
    ours.train(), theirs.train()
    torch.manual_seed(5)
    a = theirs(x)[0]
    torch.manual_seed(5)
    b = ours(x)[0]
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ours(x)[0])
