"""The native kernel's per-step GEMM engine (kernels/native/engine.py): both engines run, are
plumbed through to the kernel, and give the reference's results (float64 within 1e-10,
float32 within 1e-5 of the float64 truth)."""

import pytest
import torch

from lstmlens.kernels.native import engine, loader
from lstmlens.kernels.native.functions import lstm_native
from lstmlens.kernels.reference import lstm_reference
from lstmlens.precision import native_bf16
from test_native import VARIANTS, _to_double, kernel_case, run_and_grads, vid


@pytest.fixture(autouse=True)
def kernel():
    if not loader.status().ok:
        pytest.skip(f"native kernel not built: {loader.status().summary()}")
    before = engine.get_engine()
    yield
    engine.set_engine(before)


def test_the_choice_reaches_the_kernel_and_is_restored():
    assert engine.get_engine() == "mkl-packed"  # the default measured best (engine.py)
    with engine.using("aten"):
        assert engine.get_engine() == "aten"
    assert engine.get_engine() == "mkl-packed"
    assert engine.set_engine("aten") == "mkl-packed" and engine.get_engine() == "aten"
    with pytest.raises(ValueError, match="step engine must be one of mkl-packed, aten"):
        engine.set_engine("onednn")


def test_the_environment_overrides_the_default(monkeypatch, caplog):
    monkeypatch.setenv(engine.ENV, "aten")
    engine.apply_environment()
    assert engine.get_engine() == "aten"
    monkeypatch.setenv(engine.ENV, "bogus")
    engine.apply_environment()  # a warning, the engine unchanged
    assert engine.get_engine() == "aten" and "LSTMLENS_STEP_ENGINE ignored" in caplog.text


@pytest.mark.parametrize("name", engine.ENGINES)
@pytest.mark.parametrize("variant", ["vanilla", "cifg", "fgr", VARIANTS[-2]], ids=vid)
@pytest.mark.parametrize("option", ["plain", "everything"])
def test_each_engine_equals_the_reference(name, variant, option):
    case64 = kernel_case(variant, option)
    case32 = kernel_case(variant, option, torch.float32, T=6, B=3, I=9, H=37)
    with engine.using(name):
        got64 = run_and_grads(lstm_native, case64)
        got32 = run_and_grads(lstm_native, case32)
    want64 = run_and_grads(lambda *a: lstm_reference(*a), case64)
    want32 = run_and_grads(lambda *a: lstm_reference(*a), _to_double(case32))
    for a, b in zip(got64, want64, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    tol = 1e-4 if case32[4].layer_norm else 1e-5
    for a, b in zip(got32, want32, strict=True):
        torch.testing.assert_close(a, b.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "two-products"])
@pytest.mark.parametrize("option", ["plain", "zoneout", "padding", "recurrent_dropout", "proj"])
def test_full_gate_recurrence_folded_or_not_equals_the_reference(fold, option):
    """fgr without layer norm runs one recurrent product [h | s] [W_hh | E]^T per step."""
    before = engine.fold_fgr(fold)
    try:
        case = kernel_case("fgr", option, T=5, B=3, I=3, H=5)
        got = run_and_grads(lstm_native, case)
    finally:
        engine.fold_fgr(before)
    want = run_and_grads(lambda *a: lstm_reference(*a), case)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["plain", "zoneout", "recurrent_dropout", "proj"])
def test_gradcheck_folded_full_gate_recurrence(option):
    before = engine.fold_fgr(True)
    x, h0, c0, p, spec, keep_h, keep_c, rmask = kernel_case("fgr", option, T=4, B=2, I=2, H=3)
    names = list(p)

    def f(x, h0, c0, *params):
        return lstm_native(x, h0, c0, dict(zip(names, params)), spec, keep_h, keep_c, rmask)

    inputs = [t.clone().requires_grad_() for t in (x, h0, c0, *p.values())]
    try:
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)
    finally:
        engine.fold_fgr(before)


def test_gate_recurrence_in_bf16_is_close_and_really_bf16():
    """fgr_bf16: only s_{t-1} W_gate^T in bfloat16; a few 1e-3 off the truth (bf16 operands),
    further off than the float32 kernel."""
    if not (loader.status().bf16 and native_bf16()):
        pytest.skip("no native bf16 / MKL bf16 GEMM here")
    case = kernel_case("fgr", "plain", torch.float32, T=6, B=3, I=9, H=37)
    want = run_and_grads(lambda *a: lstm_reference(*a), _to_double(case))
    f32 = run_and_grads(lstm_native, case)
    before = engine.fgr_bf16(True)
    try:
        bf = run_and_grads(lstm_native, case)
    finally:
        engine.fgr_bf16(before)
    err = lambda got: max(((a - b.float()).abs() / (1 + b.float().abs())).max().item()
                          for a, b in zip(got, want))  # fmt: skip
    assert err(bf) < 2e-2 and err(bf) > 10 * err(f32)
