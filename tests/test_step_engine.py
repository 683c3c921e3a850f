"""The native kernel's per-step GEMM engine (kernels/native/engine.py): both engines run, are
plumbed through to the kernel, and give the reference's results (float64 within 1e-10,
float32 within 1e-5 of the float64 truth)."""

import pytest
import torch

from lstmlens.kernels.native import engine, loader
from lstmlens.kernels.native.functions import lstm_native
from lstmlens.kernels.reference import lstm_reference
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
