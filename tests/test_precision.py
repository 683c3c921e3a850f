"""``precision="bf16"``: detected per CPU, refused in one line where the CPU would emulate it.

Both code paths run here by replacing the detector: this machine may or may not have native
bfloat16 (an Intel Xeon with avx512_bf16/amx_bf16 does, an AVX2-only AMD EPYC does not).
"""

import pytest
import torch

import lstmlens
from lstmlens import precision
from lstmlens.cli import main as cli_main
from lstmlens.precision import check_precision, cpu_flags, native_bf16
from lstmlens.train import TrainConfig, Trainer
from test_trainer import Regression, mlp


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-bf16"])
def bf16_cpu(request, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: request.param)
    return request.param


def test_the_detector_reads_the_cpu_flags(monkeypatch):
    for cached in (cpu_flags, native_bf16, precision.cpu_model):
        cached.cache_clear()
    text = "processor: 0\nmodel name: AMD EPYC 7B13\nflags: fpu sse avx2 fma\n"
    monkeypatch.setattr(precision, "_cpuinfo", lambda: text)
    assert not native_bf16() and "avx2" in cpu_flags() and precision.cpu_model() == "AMD EPYC 7B13"
    for cached in (cpu_flags, native_bf16, precision.cpu_model):
        cached.cache_clear()
    monkeypatch.setattr(precision, "_cpuinfo", lambda: text.replace("fma", "fma amx_bf16"))
    assert native_bf16()
    for cached in (cpu_flags, native_bf16, precision.cpu_model):
        cached.cache_clear()  # the real CPU again for later tests


def test_check_precision(bf16_cpu):
    check_precision("fp32", "cpu", "x")  # always fine
    check_precision("bf16", "meta", "x")  # not a CPU: not this module's business
    if bf16_cpu:
        check_precision("bf16", "cpu", "x")
    else:
        with pytest.raises(ValueError, match=r"^x: bfloat16 needs a CPU with native bf16") as e:
            check_precision("bf16", "cpu", "x")
        assert "\n" not in str(e.value) and "use fp32" in str(e.value)


def test_trainer_refuses_emulated_bf16(bf16_cpu):
    config = TrainConfig(epochs=1, precision="bf16")
    if bf16_cpu:
        assert Trainer(mlp(), Regression(), config).fit().stopped == "completed"
    else:
        with pytest.raises(ValueError, match="Trainer: precision 'bf16'"):
            Trainer(mlp(), Regression(), config)


def test_lstm_native_refuses_emulated_bf16(bf16_cpu):
    from lstmlens.kernels.native import functions, loader

    if not loader.status().ok:
        pytest.skip("native kernel not built here")
    m = lstmlens.LSTM(3, 4, backend="native")
    x, h0, c0, p = torch.randn(5, 2, 3), torch.zeros(2, 4), torch.zeros(2, 4), m.layer_parameters(0)
    if bf16_cpu:
        functions.lstm_native(x, h0, c0, p, m.spec, precision="bf16")
    else:
        with pytest.raises(ValueError, match="lstm_native: precision 'bf16'"):
            functions.lstm_native(x, h0, c0, p, m.spec, precision="bf16")


@pytest.mark.parametrize(
    "command",
    ["forecast train nope.csv", "forecast backtest nope.csv", "text train nope.txt",
     "classify train nope.csv --id i --time t --label y"],
)  # fmt: skip
def test_every_train_command_refuses_emulated_bf16_in_one_line(command, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    out = tmp_path / "run"
    argv = [*command.split(), "--precision", "bf16", "--out", str(out)]
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--precision bf16: bfloat16 needs a CPU" in err
    assert not out.exists()  # refused before any data is read or anything written
