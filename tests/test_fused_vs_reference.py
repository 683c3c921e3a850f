"""Every fast path equals the reference loop; the gradients of both pass gradcheck in float64.

"Every fast path" is every registered backend other than ``reference`` (the oracle itself).
"""

import functools
import itertools

import pytest
import torch
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlens
from kernel_backends import registered, usable
from lstmlens.variants import PRESETS, Variant

OPTIONS = {  # option name -> LSTM keyword arguments
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "zoneout": {"zoneout": (0.3, 0.5)},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
    "proj": {"proj_size": 2},
    "no_bias": {"bias": False},
    "everything": {"layer_norm": True, "zoneout": 0.2, "recurrent_dropout": 0.3, "proj_size": 2},
}
VARIANTS = [
    *PRESETS,
    Variant(coupled=True),
    Variant(full_gate_recurrence=True, output_gate=False),
    Variant(input_gate=False, forget_gate=False, output_activation="identity"),
]


def _loss_and_grads(m, x, lengths, seed=1):
    xi = x.clone().requires_grad_()
    inp = pack_padded_sequence(xi, lengths, enforce_sorted=False) if lengths is not None else xi
    torch.manual_seed(seed)  # the same zoneout / recurrent-dropout masks on both paths
    out, (h, c) = m(inp)
    out = out.data if lengths is not None else out
    g = torch.Generator().manual_seed(3)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in (out, h, c))
    return [out, h, c, *torch.autograd.grad(loss, [xi, *m.parameters()])]


FAST = registered(without=("reference",))


def _layer(variant, option, backend):
    kw = dict(num_layers=2, bidirectional=True, variant=variant, **OPTIONS[option])
    return lstmlens.LSTM(3, 4, backend=backend, **kw).double()


@functools.cache
def _reference_run(variant, option):
    """Weights, input and the reference's values and gradients (once for every fast path)."""
    torch.manual_seed(0)
    ref = _layer(variant, option, "reference")
    x = torch.randn(5, 3, 3, dtype=torch.double)
    runs = [_loss_and_grads(ref, x, lengths) for lengths in LENGTHS]
    return ref.state_dict(), x, runs


LENGTHS = (None, torch.tensor([5, 2, 4]))


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v if isinstance(v, str) else v.name)
def test_fast_path_equals_reference(variant, option, backend):
    weights, x, want = _reference_run(variant, option)
    fast = _layer(variant, option, usable(backend))
    fast.load_state_dict(weights)
    for lengths, expected in zip(LENGTHS, want):
        for a, b in zip(expected, _loss_and_grads(fast, x, lengths), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", ["GRU", "RNN"])
def test_fast_gru_rnn_equal_reference(mode, backend):
    cls = getattr(lstmlens, mode)
    ref = cls(3, 4, 2, bidirectional=True, backend="reference").double()
    fus = cls(3, 4, 2, bidirectional=True, backend=usable(backend)).double()
    fus.load_state_dict(ref.state_dict())
    x = torch.randn(5, 3, 3, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([5, 1, 3])
    res = []
    for m in (ref, fus):
        out, h = m(pack_padded_sequence(x, lengths, enforce_sorted=False))
        loss = (out.data.sin()).sum() + (h * h).sum()
        res.append([out.data, h, *torch.autograd.grad(loss, [x, *m.parameters()])])
    for a, b in zip(*res):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


def _gradcheck_layer(m, x, h0, c0, fast):
    names = [n for n, _ in m.named_parameters()]

    def f(x, h0, c0, *params):
        torch.manual_seed(11)  # fixed zoneout / recurrent-dropout masks for every evaluation
        out, (h, c) = functional_call(m, dict(zip(names, params)), (x, (h0, c0)))
        return out, h, c

    inputs = (x, h0, c0, *(p.detach().clone().requires_grad_() for p in m.parameters()))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=fast)


GRADCHECK_CASES = [(v, "plain") for v in PRESETS] + [
    (v, o)
    for v, o in itertools.product(
        ["vanilla", "peephole", "cifg", "fgr"],
        ["layer_norm", "zoneout", "recurrent_dropout", "proj"],
    )
]


@pytest.mark.parametrize("backend", registered())
@pytest.mark.parametrize("variant,option", GRADCHECK_CASES)
def test_gradcheck(variant, option, backend):
    torch.manual_seed(0)
    m = lstmlens.LSTM(2, 3, variant=variant, backend=usable(backend), **OPTIONS[option]).double()
    m.train()
    P = m.proj_size or 3
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, 2, P, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(1, 2, 3, dtype=torch.double, requires_grad=True)
    # full Jacobians for the hand-derived backward; torch's own autograd (reference) in fast mode
    _gradcheck_layer(m, x, h0, c0, fast=backend == "reference")


@pytest.mark.parametrize("backend", registered())
def test_gradcheck_packed_bidirectional(backend):
    m = lstmlens.LSTM(2, 2, bidirectional=True, variant="peephole", backend=usable(backend))
    m = m.double()
    x = torch.randn(4, 3, 2, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([4, 2, 3])
    names = [n for n, _ in m.named_parameters()]

    def f(x, *params):
        out, (h, c) = functional_call(
            m, dict(zip(names, params)), (pack_padded_sequence(x, lengths, enforce_sorted=False),)
        )
        return out.data, h, c

    params = (p.detach().clone().requires_grad_() for p in m.parameters())
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("mode", ["GRU", "RNN"])
def test_gradcheck_gru_rnn_fast(mode, backend):
    m = getattr(lstmlens, mode)(2, 3, backend=usable(backend)).double()
    names = [n for n, _ in m.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, 2, 3, dtype=torch.double, requires_grad=True)
    f = lambda x, h0, *ps: functional_call(m, dict(zip(names, ps)), (x, h0))
    params = (p.detach().clone().requires_grad_() for p in m.parameters())
    assert torch.autograd.gradcheck(f, (x, h0, *params), eps=1e-6, atol=1e-6)


def test_zoneout_and_recurrent_dropout_only_in_training():
    m = lstmlens.LSTM(3, 4, zoneout=0.5, recurrent_dropout=0.5).double()
    plain = lstmlens.LSTM(3, 4).double()
    plain.load_state_dict(m.state_dict())
    x = torch.randn(6, 2, 3, dtype=torch.double)
    m.eval(), plain.eval()
    torch.testing.assert_close(m(x)[0], plain(x)[0])
    m.train()
    assert not torch.allclose(m(x)[0], plain(x)[0])
