"""The kernel registry: one line adds a backend, and auto, bench and the parity tests use it."""

import pytest
import torch

import lstmlens
import test_golden
import test_parity_torch
from kernel_backends import registered
from lstmlens.bench import default_backend, default_impls, run_benchmark
from lstmlens.cli import main as cli_main
from lstmlens.kernels import registry
from lstmlens.kernels.native import loader
from lstmlens.kernels.reference import Reference


class Toy(Reference):
    """A new backend in a few lines: the reference loop, counting its calls."""

    name, records, calls = "toy", False, 0

    def lstm(self, *args, **kwargs):
        Toy.calls += 1
        return super().lstm(*args, **kwargs)

    def gru(self, *args, **kwargs):
        Toy.calls += 1
        return super().gru(*args, **kwargs)

    def rnn(self, *args, **kwargs):
        Toy.calls += 1
        return super().rnn(*args, **kwargs)


@pytest.fixture
def toy():
    """The toy backend registered ahead of every other one, unregistered afterwards."""
    registry.register(Toy(), priority=1000)
    Toy.calls = 0
    yield "toy"
    registry.unregister("toy")


def test_builtin_backends_are_listed_with_availability():
    info = {b.name: b for b in lstmlens.backends()}
    assert [n for n in info if n in ("native", "fused", "reference")] == [
        "native",
        "fused",
        "reference",
    ]  # auto's order: compiled, then fused PyTorch, then the oracle
    assert info["fused"].available and info["reference"].available
    native = info["native"]
    assert native.available == loader.status().ok
    assert native.available or native.reason == loader.status().summary()
    assert native.fallback == "fused"


def test_auto_picks_the_first_backend_that_runs_the_input():
    m = lstmlens.LSTM(3, 4)
    m(torch.randn(5, 2, 3))
    assert m.last_backend == default_backend() == registry.names()[0 if loader.status().ok else 1]
    lens = lstmlens.inspect(m, torch.randn(5, 2, 3))  # the lens records through the oracle
    assert m.last_backend == "reference" and lens.gate("forget").shape == (5, 2, 4)


def test_a_registered_toy_backend_is_picked_up_by_auto_bench_and_the_parity_tests(toy, capsys):
    assert registered()[0] == "toy" and lstmlens.backends()[0].name == "toy"
    m = lstmlens.LSTM(3, 4, num_layers=2)
    m(torch.randn(5, 2, 3))
    assert m.last_backend == "toy" and Toy.calls == 2  # auto, one call per layer
    # bench: the default backend, the implementations and the command's choices
    assert default_backend() == "toy" and default_impls(variants=["cifg"])[1] == "toy:cifg"
    rows = run_benchmark([(2, 3, 2, 4)], ["torch.nn.LSTM", "toy:vanilla"], ["infer"], 1)
    assert [r.impl for r in rows] == ["torch.nn.LSTM", "toy:vanilla"]
    argv = ["bench", "--shapes", "2,3,2,4", "--variants", "vanilla", "--backend", "toy",
            "--modes", "infer", "--repeats", "1", "--quiet"]  # fmt: skip
    assert cli_main.main(argv) == 0 and "| toy:vanilla | infer |" in capsys.readouterr().out
    # the parity tests run every registered backend through these, toy included
    calls = Toy.calls
    test_parity_torch.assert_backend_matches_torch("toy")
    test_golden.test_golden_values("cifg", "toy")
    assert Toy.calls > calls


def test_toy_is_gone_after_unregistering():
    assert "toy" not in registry.names()
    with pytest.raises(ValueError, match="backend must be one of"):
        lstmlens.LSTM(3, 4, backend="toy")


def test_an_explicit_backend_that_cannot_run_the_input_names_itself_and_why(toy):
    class Picky(Reference):
        name, records = "picky", False

        def supports(self, mode, device, dtype, spec):
            return registry.Support(dtype == torch.float64, f"float64 only, got {dtype}")

    registry.register(Picky(), priority=2000)
    try:
        m = lstmlens.GRU(3, 4, backend="picky")
        with pytest.raises(ValueError, match=r"^GRU: backend 'picky' cannot run this input: "
                                             r"float64 only, got torch.float32$"):  # fmt: skip
            m(torch.randn(2, 1, 3))
        auto = lstmlens.GRU(3, 4)
        auto(torch.randn(2, 1, 3))
        assert auto.last_backend == "toy"  # picky said no: the next one in line
        auto.double()(torch.randn(2, 1, 3, dtype=torch.double))
        assert auto.last_backend == "picky"
    finally:
        registry.unregister("picky")


def test_masks_are_typed_and_optional():
    masks = registry.Masks(keep_h=torch.zeros(2, 1, 1))
    assert masks.keep_c is None and masks.rmask is None
    with pytest.raises(AttributeError):
        masks.keep_h = None  # type: ignore[misc]
