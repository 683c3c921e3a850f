"""The wavefront schedule (a whole LSTM stack in the native kernel, chains on threads) equals
the reference backend run layer by layer, passes gradcheck, and is chosen by its rule.

Skips only when this machine has no compiler; a build error FAILS (as in test_native.py).
"""

import pytest
import torch
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmlens import GRU, LSTM
from lstmlens.kernels import schedule
from lstmlens.kernels.native import wavefront as wavefront_module
from lstmlens.kernels.native.abi import LSTM_SLOTS, lstm_config
from lstmlens.kernels.native.wavefront import (
    MIN_DIRECTION_WORK,
    MIN_STEP_WORK,
    Wavefront,
    chunks_for,
)
from lstmlens.variants import PRESETS

TOL = 1e-10


pytestmark = pytest.mark.usefixtures("built")  # (tests/conftest.py)


def run(backend, schedule_, *, layers=2, bi=False, packed=False, T=19, B=3, I=4, H=5, seed=0,
        train=True, dtype=torch.float64, **kw):  # fmt: skip
    """Outputs, final states, and the gradients of x, h0, c0 and every parameter."""
    torch.manual_seed(seed)
    m = LSTM(I, H, layers, bidirectional=bi, backend=backend, schedule=schedule_, dtype=dtype,
             **kw)  # fmt: skip
    m.train(train)
    D, P = (2 if bi else 1), (kw.get("proj_size") or H)
    x = torch.randn(T, B, I, dtype=dtype, requires_grad=True)
    h0 = torch.randn(layers * D, B, P, dtype=dtype, requires_grad=True)
    c0 = torch.randn(layers * D, B, H, dtype=dtype, requires_grad=True)
    torch.manual_seed(seed + 1)  # the masks' draws
    inp = x
    if packed:
        lengths = torch.tensor([T, 2, T - 5][:B])
        inp = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, (h, c) = m(inp, (h0, c0))
    if packed:
        out = pad_packed_sequence(out)[0]
    w = torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)
    ((out * w).sum() + (h * 1.5).sum() + (c**2).sum()).backward()
    grads = [x.grad, h0.grad, c0.grad] + [p.grad for p in m.parameters()]
    return [out, h, c, *grads], m.last_schedule


def assert_same(a, b, tol=TOL):
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b)):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol, msg=lambda m, k=k: f"tensor {k}: {m}")


CASES = {
    "2 layers": dict(),
    "3 layers, dropout": dict(layers=3, dropout=0.4),
    "bidirectional": dict(layers=1, bi=True),
    "2 layers bidirectional, dropout": dict(bi=True, dropout=0.3),
    "packed": dict(packed=True),
    "packed bidirectional": dict(bi=True, packed=True, dropout=0.2),
    "zoneout, recurrent dropout": dict(zoneout=(0.2, 0.3), recurrent_dropout=0.25),
    "layer norm, projection": dict(layer_norm=True, proj_size=3, bi=True, T=7),
    "no bias, eval": dict(bias=False, train=False, dropout=0.5),
    "one step per chunk": dict(T=3),
}


@pytest.mark.parametrize("case", CASES)
def test_wavefront_equals_the_reference_backend(case):
    want, _ = run("reference", "sequential", **CASES[case])
    got, ran = run("native", "wavefront", **CASES[case])
    assert ran == "wavefront"
    assert_same(got, want)


@pytest.mark.parametrize("variant", PRESETS)
@pytest.mark.parametrize("bi", [False, True], ids=["stacked", "bidirectional"])
def test_every_variant_on_the_wavefront_equals_the_reference(variant, bi):
    kw = dict(variant=variant, bi=bi, packed=True, dropout=0.3, T=11)
    want, _ = run("reference", "sequential", **kw)
    got, _ = run("native", "wavefront", **kw)
    assert_same(got, want)


def test_dropout_masks_are_the_sequential_schedules_given_the_seed():
    kw = dict(layers=3, bi=True, dropout=0.5, zoneout=0.1, recurrent_dropout=0.2, seed=3)
    seq, _ = run("native", "sequential", **kw)
    wave, _ = run("native", "wavefront", **kw)
    assert_same(wave, seq)
    other, _ = run("native", "wavefront", **{**kw, "seed": 4})
    assert not torch.allclose(other[0], wave[0])  # the masks (and weights) do change


def test_float32_matches_too():
    want, _ = run("native", "sequential", dtype=torch.float32, bi=True, layers=2)
    got, _ = run("native", "wavefront", dtype=torch.float32, bi=True, layers=2)
    assert_same(got, want, tol=1e-5)
    want, _ = run("native", "sequential", dtype=torch.float32, layers=3, T=40)
    got, _ = run("native", "wavefront", dtype=torch.float32, layers=3, T=40)
    assert_same(got, want, tol=1e-5)


def test_inference_under_no_grad_and_inference_mode():
    torch.manual_seed(0)
    m = LSTM(3, 4, 2, bidirectional=True, dtype=torch.float64, backend="native")
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    m.schedule = "sequential"
    want = m(x)
    m.schedule = "wavefront"
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            out, (h, c) = m(x)
        assert_same([out, h, c], [want[0], *want[1]])


@pytest.mark.slow
@pytest.mark.parametrize("bi", [False, True], ids=["stacked", "bidirectional"])
def test_gradcheck(bi):
    torch.manual_seed(0)
    m = LSTM(2, 3, 2, bidirectional=bi, variant="peephole", dtype=torch.float64,
             backend="native", schedule="wavefront")  # fmt: skip
    D = 2 if bi else 1
    names = [n for n, _ in m.named_parameters()]
    x = torch.randn(9, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * D, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2 * D, 2, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]

    def f(x, h0, c0, *ps):
        out, (h, c) = functional_call(m, dict(zip(names, ps)), (x, (h0, c0)))
        return out, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))
    assert m.last_schedule == "wavefront"


# -- the choice -----------------------------------------------------------------------------


def big(layers=2, bi=False, T=24, **kw):
    B, H = 16, 64  # B * 4H * H = 2**18 multiply-adds per step
    assert B * 4 * H * H >= MIN_STEP_WORK and 24 * B * 4 * H * H >= MIN_DIRECTION_WORK
    return LSTM(H, H, layers, bidirectional=bi, backend="native", **kw), torch.randn(T, B, H)


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "layers, bi, n_threads, variant, want",
    [
        (2, False, 2, "vanilla", "wavefront"),
        (1, True, 2, "vanilla", "wavefront"),
        (2, False, 1, "vanilla", "sequential"),  # one thread asked for: no second chain
        (1, False, 2, "vanilla", "sequential"),  # nothing to run at once
        (2, False, 2, "fgr", "sequential"),  # one chunk: the layers would wait for each other
        (1, True, 2, "fgr", "wavefront"),
    ],
)
def test_auto_takes_the_wavefront_where_it_helps(
    threads, monkeypatch, layers, bi, n_threads, variant, want
):
    monkeypatch.setattr(wavefront_module, "AUTO", True)  # the rule, where it is switched on
    threads(n_threads)
    m, x = big(layers, bi, variant=variant)
    m(x)
    assert m.last_schedule == want


def test_auto_keeps_sequential_by_default(threads):
    """Measured on the 2-core machine, the wavefront did not beat sequential: auto is off."""
    threads(2)
    for layers, bi in ((2, False), (1, True)):
        m, x = big(layers, bi)
        m(x)
        assert m.last_schedule == "sequential"
        m.schedule = "wavefront"  # still there when asked for
        m(x)
        assert m.last_schedule == "wavefront"


def test_auto_keeps_small_or_short_stacks_sequential(threads, monkeypatch):
    monkeypatch.setattr(wavefront_module, "AUTO", True)
    threads(2)
    m = LSTM(8, 8, 2, backend="native")
    m(torch.randn(30, 2, 8))
    assert m.last_schedule == "sequential"  # small steps
    m, x = big(T=23)  # one chunk: nothing would overlap
    m(x)
    assert m.last_schedule == "sequential"
    m, x = big(layers=1, bi=True, T=3)  # 3 steps a direction: less than starting a thread
    m(x)
    assert m.last_schedule == "sequential"


def test_auto_keeps_sequential_off_the_native_backend_and_when_recording(threads):
    threads(2)
    m, x = big()
    m.backend = "fused"
    with torch.no_grad():
        m(x)
    assert (m.last_backend, m.last_schedule) == ("fused", "sequential")
    m.backend = "native"
    m._recorder = lambda *a: None
    with torch.no_grad():
        m(x)
    assert m.last_schedule == "sequential"


def test_an_explicit_schedule_that_cannot_run_says_why():
    m = LSTM(3, 4, 2, backend="fused", schedule="wavefront")
    with pytest.raises(ValueError, match="schedule 'wavefront' cannot run this input: .*native"):
        m(torch.randn(4, 2, 3))
    g = GRU(3, 4, 2, schedule="wavefront")
    with pytest.raises(ValueError, match="LSTM layers, got a GRU"):
        g(torch.randn(4, 2, 3))
    with pytest.raises(ValueError, match="schedule must be one of .*'wavefront'.*got 'fast'"):
        LSTM(3, 4, schedule="fast")


def test_schedules_are_a_registry():
    assert schedule.names() == ("wavefront", "sequential")
    assert isinstance(Wavefront(), schedule.Schedule)
    assert "schedule='wavefront'" in repr(LSTM(3, 4, schedule="wavefront"))


def test_chunks():
    assert chunks_for(100, 2) == 8 and chunks_for(50, 3) == 4 and chunks_for(1000, 2) == 8
    assert chunks_for(23, 2) == 1 and chunks_for(100, 1) == 1


def test_the_op_checks_its_arguments():
    ops = torch.ops.lstmlens_native
    torch.manual_seed(0)
    m = LSTM(3, 4, 2, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h0 = torch.zeros(2, 2, 4, dtype=torch.float64)
    w = [p.detach() for p in m.parameters()]  # not the slot list: too few weights
    with pytest.raises(RuntimeError, match="lstmlens native LSTM stack: expected 26 weights"):
        ops.lstm_stack_forward(x, h0, h0, w, lstm_config(m.spec, False), 2, 1, 2,
                               [None] * 2, [None] * 2, [None] * 2, [None], None, False)  # fmt: skip


def test_an_error_inside_a_chain_reaches_the_caller():
    """The reverse direction's chain gathers with ``rev``: a bad index fails on that thread."""
    torch.manual_seed(0)
    m = LSTM(3, 4, 1, bidirectional=True, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h0 = torch.zeros(2, 2, 4, dtype=torch.float64)
    rev = torch.full((5, 2), 99, dtype=torch.long)
    w = []
    for d in range(2):
        p = m.layer_parameters(0, d)
        w += [p[n].detach() if n in p else x.new_empty(0) for n in LSTM_SLOTS]
    with pytest.raises(RuntimeError, match="index"):
        torch.ops.lstmlens_native.lstm_stack_forward(
            x, h0, h0, w, lstm_config(m.spec, False), 1, 2, 1,
            [None] * 2, [None] * 2, [None] * 2, [], rev, False)  # fmt: skip


@pytest.mark.parametrize("bi", [False, True], ids=["stacked", "bidirectional"])
def test_vanilla_on_the_wavefront_equals_torch(bi):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 5, 2, batch_first=True, bidirectional=bi, proj_size=2,
                        dtype=torch.float64)  # fmt: skip
    m = LSTM.from_torch(ref, backend="native", schedule="wavefront")
    x = torch.randn(3, 26, 3, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([26, 7, 19]), batch_first=True,
                                  enforce_sorted=False)  # fmt: skip
    results = []
    for model in (ref, m):
        model.zero_grad()
        out, (h, c) = model(packed)
        out = pad_packed_sequence(out, batch_first=True)[0]
        (out.sum() + (h**2).sum() + c.sum()).backward()
        results.append([out, h, c, *(p.grad for p in model.parameters())])
    assert m.last_schedule == "wavefront"
    assert_same(results[1], results[0])
