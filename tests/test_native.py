"""The compiled kernel equals the reference loop, passes gradcheck, and falls back cleanly.

The kernel is built once per machine (cached outside the tree) by the first test that needs it.
Its tests skip only when no C++ compiler exists; a compile error in our sources FAILS them.
"""

import itertools
import warnings
from pathlib import Path

import pytest
import torch
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlens
from lstmlens.cells import CellSpec, lstm_param_shapes
from lstmlens.kernels import registry
from lstmlens.kernels.native import functions, loader
from lstmlens.kernels.native.functions import lstm_native
from lstmlens.kernels.reference import lstm_reference
from lstmlens.precision import native_bf16
from lstmlens.variants import PRESETS, Variant, resolve_variant

OPTIONS = {  # option name -> CellSpec fields and which masks the kernel gets
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "zoneout": {"zoneout": True},
    "padding": {"padding": True},
    "recurrent_dropout": {"rmask": True},
    "proj": {"proj_size": 2},
    "no_bias": {"bias": False},
    "everything": {"layer_norm": True, "zoneout": True, "padding": True, "rmask": True,
                   "proj_size": 2},
}  # fmt: skip
VARIANTS = [
    *PRESETS,
    Variant(coupled=True),
    Variant(full_gate_recurrence=True, output_gate=False),
    Variant(input_gate=False, forget_gate=False, output_activation="identity"),
]
vid = lambda v: v if isinstance(v, str) else v.name


def kernel_case(variant, option, dtype=torch.double, T=5, B=3, I=3, H=4, proj=None):
    """Inputs of one layer-direction: (x, h0, c0, params, spec, keep_h, keep_c, rmask)."""
    o = OPTIONS[option]
    proj = o.get("proj_size", 0) if proj is None else proj
    spec = CellSpec(
        resolve_variant(variant), H, proj, o.get("layer_norm", False), o.get("bias", True)
    )
    P = spec.state_size
    g = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.rand(*shape, generator=g, dtype=dtype) - 0.5
    p = {n: rand(*s) for n, s in lstm_param_shapes(spec, I).items()}
    for n in ("ln_weight_ih", "ln_weight_hh", "ln_weight_c"):
        if n in p:
            p[n] = p[n] + 1  # gains near 1
    x, h0, c0 = 2 * rand(T, B, I), rand(B, P), rand(B, H)
    keep_h = keep_c = rmask = None
    if o.get("padding"):  # padded steps keep the state: (T, B, 1), broadcast over units
        lengths = torch.tensor([T, 2, 4][:B])
        keep_h = keep_c = (torch.arange(T)[:, None] >= lengths[None]).to(dtype).unsqueeze(-1)
    if o.get("zoneout"):  # one value per unit
        zh = torch.bernoulli(torch.full((T, B, P), 0.3, dtype=dtype), generator=g)
        zc = torch.bernoulli(torch.full((T, B, H), 0.5, dtype=dtype), generator=g)
        keep_h = zh if keep_h is None else torch.maximum(zh, keep_h)
        keep_c = zc if keep_c is None else torch.maximum(zc, keep_c)
    if o.get("rmask"):
        rmask = torch.bernoulli(torch.full((B, P), 0.6, dtype=dtype), generator=g) / 0.6
    return x, h0, c0, p, spec, keep_h, keep_c, rmask


def run_and_grads(fn, case):
    """Outputs of ``fn`` on ``case`` and the gradients of a random mix of them."""
    x, h0, c0, p, spec, keep_h, keep_c, rmask = case
    leaves = [t.clone().requires_grad_() for t in (x, h0, c0, *p.values())]
    ps = dict(zip(p, leaves[3:]))
    outs = fn(*leaves[:3], ps, spec, keep_h, keep_c, rmask)
    g = torch.Generator().manual_seed(3)  # the same weights in every dtype
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=torch.double)).sum() for t in outs)
    return [*outs, *torch.autograd.grad(loss, leaves)]


def assert_kernel_matches(case, tol):
    got = run_and_grads(lstm_native, case)
    want = run_and_grads(lambda *a: lstm_reference(*a), case)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


pytestmark = pytest.mark.usefixtures("built")  # (tests/conftest.py)


def make(cls, *args, backend="native", **kw):
    """A layer on the given backend."""
    return cls(*args, backend=backend, **kw)


def _loss_and_grads(m, x, lengths, seed=1):
    xi = x.clone().requires_grad_()
    inp = pack_padded_sequence(xi, lengths, enforce_sorted=False) if lengths is not None else xi
    torch.manual_seed(seed)  # the same zoneout / recurrent-dropout masks on both paths
    out, hx = m(inp)
    out = out.data if lengths is not None else out
    outs = [out, *hx] if isinstance(hx, tuple) else [out, hx]
    g = torch.Generator().manual_seed(3)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in outs)
    return [*outs, *torch.autograd.grad(loss, [xi, *m.parameters()])]


def assert_layers_match(cls, kw, x, lengths, tol, I=3, H=4):
    torch.manual_seed(0)
    ref = cls(I, H, backend="reference", **kw).to(x.dtype)
    nat = make(cls, I, H, **kw).to(x.dtype)
    nat.load_state_dict(ref.state_dict())
    got, want = _loss_and_grads(nat, x, lengths), _loss_and_grads(ref, x, lengths)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("variant", VARIANTS, ids=vid)
def test_kernel_equals_reference_float64(variant, option):
    assert_kernel_matches(kernel_case(variant, option), 1e-10)


@pytest.mark.parametrize("variant", VARIANTS, ids=vid)
def test_kernel_equals_reference_wide_rows(variant):
    """H = 21, P = 10: full vectors plus a tail in every row loop (float64 has 8 lanes)."""
    assert_kernel_matches(kernel_case(variant, "plain", T=4, I=5, H=21), 1e-10)
    assert_kernel_matches(kernel_case(variant, "everything", T=4, I=5, H=21, proj=10), 1e-10)


def _to_double(case):
    return tuple(
        t.double() if isinstance(t, torch.Tensor)
        else {k: v.double() for k, v in t.items()} if isinstance(t, dict) else t
        for t in case
    )  # fmt: skip


@pytest.mark.parametrize("option", ["plain", "proj", "zoneout", "layer_norm", "everything"])
@pytest.mark.parametrize("variant", VARIANTS, ids=vid)
def test_kernel_float32_equals_float64_reference(variant, option):
    """float32 against the float64 reference (the truth): 1e-5. With layer norm 1e-4: its
    backward divides by each row's standard deviation, which amplifies float32 rounding; the
    float32 reference and fused paths themselves are up to 6e-5 off the truth there."""
    case = kernel_case(variant, option, torch.float32, T=6, B=3, I=9, H=37)
    got = run_and_grads(lstm_native, case)
    want = run_and_grads(lambda *a: lstm_reference(*a), _to_double(case))
    tol = 1e-4 if case[4].layer_norm else 1e-5
    for a, b in zip(got, want, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("variant", ["vanilla", "cifg", "fgr", "noaf"])
def test_layers_packed_bidirectional_stacked(variant):
    kw = dict(num_layers=2, bidirectional=True, variant=variant, layer_norm=True, zoneout=0.2,
              recurrent_dropout=0.3, proj_size=2)  # fmt: skip
    x = torch.randn(5, 3, 3, dtype=torch.double)
    for lengths in (None, torch.tensor([5, 2, 4])):
        assert_layers_match(lstmlens.LSTM, kw, x, lengths, 1e-10)
    assert_layers_match(lstmlens.LSTM, {"variant": variant, "batch_first": True}, x, None, 1e-10)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_native_equals_torch_lstm_float32():
    for proj in (0, 5):
        torch.manual_seed(0)
        tm = torch.nn.LSTM(6, 33, num_layers=2, bidirectional=True, proj_size=proj)
        nat = make(lstmlens.LSTM.from_torch, tm)
        x = torch.randn(7, 5, 6, requires_grad=True)
        out_t, (h_t, c_t) = tm(x)
        out_n, (h_n, c_n) = nat(x)
        for a, b in ((out_n, out_t), (h_n, h_t), (c_n, c_t)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        gt = torch.autograd.grad((out_t.sin().sum() + c_t.sum()), [x, *tm.parameters()])
        gn = torch.autograd.grad((out_n.sin().sum() + c_n.sum()), [x, *nat.parameters()])
        for a, b in zip(gn, gt):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,kw", [("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"}),
                                     ("GRU", {"bias": False})])  # fmt: skip
def test_native_gru_rnn_equal_reference(mode, kw):
    kw = dict(num_layers=2, bidirectional=True, **kw)
    x = torch.randn(5, 3, 3, dtype=torch.double)
    for lengths in (None, torch.tensor([5, 1, 3])):
        assert_layers_match(getattr(lstmlens, mode), kw, x, lengths, 1e-10)
    assert_layers_match(getattr(lstmlens, mode), {}, torch.randn(4, 3, 5), None, 1e-5, I=5, H=37)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_inference_path_equals_reference(mode):
    """With gradients off the kernel runs its no-save path: same numbers, no graph."""
    torch.manual_seed(0)
    kw = {"variant": "fgr", "layer_norm": True, "proj_size": 3} if mode == "LSTM" else {}
    ref = getattr(lstmlens, mode)(5, 20, 2, backend="reference", **kw).double().eval()
    nat = make(getattr(lstmlens, mode), 5, 20, 2, **kw).double().eval()
    nat.load_state_dict(ref.state_dict())
    x = torch.randn(6, 3, 5, dtype=torch.double)
    want = ref(x)
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            got = nat(x)
        assert got[0].grad_fn is None
        torch.testing.assert_close(got[0], want[0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got[1], want[1], rtol=1e-10, atol=1e-10)


GRADCHECK_CASES = [(v, "plain") for v in VARIANTS] + list(
    itertools.product(["vanilla", "cifg", "fgr", "noaf"], ["layer_norm", "everything"])
)


@pytest.mark.parametrize("variant,option", GRADCHECK_CASES, ids=lambda c: vid(c))
def test_gradcheck(variant, option):
    """Full Jacobians of the hand-written backward (masks fixed: zoneout, padding, rmask)."""
    x, h0, c0, p, spec, keep_h, keep_c, rmask = kernel_case(variant, option, T=4, B=2, I=2, H=3)
    names = list(p)

    def f(x, h0, c0, *params):
        return lstm_native(x, h0, c0, dict(zip(names, params)), spec, keep_h, keep_c, rmask)

    inputs = [t.clone().requires_grad_() for t in (x, h0, c0, *p.values())]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_packed_bidirectional():
    m = make(lstmlens.LSTM, 2, 2, bidirectional=True, variant="peephole").double()
    x = torch.randn(4, 3, 2, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([4, 2, 3])
    names = [n for n, _ in m.named_parameters()]

    def f(x, *params):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, (h, c) = functional_call(m, dict(zip(names, params)), (packed,))
        return out.data, h, c

    params = (p.detach().clone().requires_grad_() for p in m.parameters())
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode,kw", [("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"})])
def test_gradcheck_gru_rnn(mode, kw):
    m = make(getattr(lstmlens, mode), 2, 3, **kw).double()
    names = [n for n, _ in m.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, 2, 3, dtype=torch.double, requires_grad=True)
    f = lambda x, h0, *ps: functional_call(m, dict(zip(names, ps)), (x, h0))
    params = (p.detach().clone().requires_grad_() for p in m.parameters())
    assert torch.autograd.gradcheck(f, (x, h0, *params), eps=1e-6, atol=1e-6)


# -- building, caching and falling back -------------------------------------------------------


def test_library_is_cached_outside_the_source_tree(built):
    root = Path(lstmlens.__file__).resolve().parents[2]
    assert built.path is not None and built.path.is_file()
    assert root not in built.path.resolve().parents
    assert loader.status() is built  # built once per process


def test_fallback_warns_once_and_runs_fused(monkeypatch):
    """Without the kernel the registry runs fused (auto or asked for native), saying so once."""
    monkeypatch.setattr(loader, "_STATUS", loader.NativeStatus(False, "build-failed", "x\nboom"))
    monkeypatch.setattr(registry, "_warned", set())
    m = lstmlens.LSTM(3, 4, variant="cifg")
    x = torch.randn(5, 2, 3)
    with pytest.warns(RuntimeWarning) as rec:
        got = m(x)
    assert len(rec) == 1 and m.last_backend == "fused"
    msg = str(rec[0].message)
    assert "\n" not in msg and "build-failed: boom" in msg and "fused" in msg
    fus = lstmlens.LSTM(3, 4, variant="cifg", backend="fused")
    fus.load_state_dict(m.state_dict())
    torch.testing.assert_close(got[0], fus(x)[0], rtol=0, atol=0)
    native = {b.name: b for b in lstmlens.backends()}["native"]
    assert (native.available, native.reason, native.fallback) == (
        False,
        "build-failed: boom",
        "fused",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time is silent
        gru = lstmlens.GRU(3, 4, backend="native")
        gru(x)
    assert gru.last_backend == "fused"
    with pytest.raises(RuntimeError, match="lstm_native: the native kernel is unavailable"):
        functions.lstm_native(
            x, torch.zeros(2, 4), torch.zeros(2, 4), m.layer_parameters(0), m.spec
        )


def test_native_refuses_what_it_does_not_support():
    """No silent slow path: native asked for on an input it cannot run is a ValueError; auto
    takes the next backend that can (fused runs float16 / any device)."""
    x = torch.randn(4, 2, 3, dtype=torch.float16)
    with pytest.raises(
        ValueError, match="^LSTM: backend 'native' cannot run this input: .*float16"
    ):
        lstmlens.LSTM(3, 4, backend="native", dtype=torch.float16)(x)
    auto = lstmlens.LSTM(3, 4, dtype=torch.float16)
    assert auto(x)[0].shape == (4, 2, 4) and auto.last_backend == "fused"
    with pytest.raises(ValueError, match="CPU only, got device meta"):
        lstmlens.GRU(3, 4, backend="native", device="meta")(torch.randn(4, 2, 3, device="meta"))
    with pytest.raises(ValueError, match="^rnn_native: the native kernel runs float32/float64 CPU"):
        functions.rnn_native(
            x, torch.zeros(2, 4, dtype=x.dtype), lstmlens.RNN(3, 4).half().layer_parameters(0)
        )


def test_no_compiler_and_disabled_are_reported(monkeypatch):
    monkeypatch.setenv("CXX", "lstmlens-no-such-compiler")
    st = loader._load()
    assert (st.ok, st.reason) == (False, "no-compiler")
    monkeypatch.setenv("LSTMLENS_NATIVE", "0")
    assert loader._load().reason == "disabled"


def test_compile_error_is_a_build_failure(tmp_path):
    src = tmp_path / "bad.cpp"
    src.write_text("int f( { return 1; }\n")
    out = tmp_path / "bad.so"
    st = loader.compile_library(src, out, loader._find_compiler() or "c++")
    assert (st.ok, st.reason) == (False, "build-failed")
    assert "error" in st.detail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.cpp"]  # no half-built files


# -- bfloat16 matmuls --------------------------------------------------------------------------


def _need_bf16():
    if not loader.status().bf16:
        pytest.skip("this torch has no MKL bfloat16 GEMM: the native kernel runs fp32 only")
    if not native_bf16():
        pytest.skip("this CPU has no native bfloat16: precision='bf16' is refused here")


@pytest.mark.parametrize("variant,option", [("vanilla", "plain"), ("cifg", "zoneout"),
                                            ("fgr", "everything")])  # fmt: skip
def test_bf16_matmuls_stay_close_to_float64(variant, option):
    """bf16 operands (8-bit mantissa), float32 accumulation: a few 1e-3 off the truth, and
    really in bf16 (further off than the float32 kernel)."""
    _need_bf16()
    case = kernel_case(variant, option, torch.float32, T=6, B=3, I=9, H=37)
    bf = run_and_grads(lambda *a: lstm_native(*a, precision="bf16"), case)
    f32 = run_and_grads(lstm_native, case)
    want = run_and_grads(lambda *a: lstm_reference(*a), _to_double(case))
    err_bf = max(
        ((a - b.float()).abs() / (1 + b.float().abs())).max().item() for a, b in zip(bf, want)
    )
    err_32 = max(
        ((a - b.float()).abs() / (1 + b.float().abs())).max().item() for a, b in zip(f32, want)
    )
    assert all(t.dtype == torch.float32 for t in bf)
    assert err_bf < (6e-2 if case[4].layer_norm else 2e-2)  # measured: 0.005, 0.008, 0.029
    assert err_bf > 10 * err_32


def test_bf16_follows_cpu_autocast():
    _need_bf16()
    m = make(lstmlens.LSTM, 5, 20, variant="peephole")
    x = torch.randn(4, 3, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_auto, (h_auto, _) = m(x)
    p = m.layer_parameters(0)
    h0 = c0 = torch.zeros(3, 20)
    out_bf, h_bf, _ = lstm_native(x, h0, c0, p, m.spec, precision="bf16")
    out_32, _, _ = lstm_native(x, h0, c0, p, m.spec, precision="fp32")
    assert out_auto.dtype == torch.float32
    torch.testing.assert_close(out_auto, out_bf, rtol=0, atol=0)
    torch.testing.assert_close(h_auto[0], h_bf, rtol=0, atol=0)
    assert (out_bf - out_32).abs().max() > 1e-5
    with pytest.raises(ValueError, match="lstm_native: precision"):
        lstm_native(x, h0, c0, p, m.spec, precision="fp16")


def test_nan_and_extremes_propagate_like_torch():
    """A NaN input gives NaN outputs (not a saturated gate); huge inputs saturate cleanly."""
    m = make(lstmlens.LSTM, 2, 20, variant="noaf")
    ref = lstmlens.LSTM(2, 20, variant="noaf", backend="reference")
    ref.load_state_dict(m.state_dict())
    x = torch.randn(3, 2, 2) * 1e4
    x[1, 0, 0] = float("nan")
    with torch.no_grad():
        got, want = m(x)[0], ref(x)[0]
    assert torch.equal(got.isnan(), want.isnan()) and got[1:, 0].isnan().all()
    torch.testing.assert_close(got[~got.isnan()], want[~want.isnan()], rtol=1e-5, atol=1e-5)
