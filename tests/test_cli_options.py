"""One option vocabulary: the shared model options reach every task model that can take them,
old spellings still work with a note, ``--device`` is checked, help shows the real defaults."""

from __future__ import annotations

import json

import pytest
import torch

from lstmlens.cli.main import build_parser, main

EXTRA = ["--layer-norm", "--zoneout", "0.1", "--recurrent-dropout", "0.2", "--proj-size", "3",
         "--forget-bias", "1.0", "--layers", "2", "--variant", "peephole"]  # fmt: skip
RECORDED = {"layer_norm": True, "zoneout": 0.1, "recurrent_dropout": 0.2, "proj_size": 3,
            "forget_bias": 1.0, "num_layers": 2, "variant": "peephole"}  # fmt: skip


def _csv(path):
    rows = [f"{2000 + i // 12}-{i % 12 + 1:02d},{50 + 0.5 * i + (i % 12):.2f}" for i in range(60)]
    path.write_text("month,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _config(run):
    return json.loads((run / "config.json").read_text(encoding="utf-8"))


def _lstm(model):
    return next(m for m in model.modules() if type(m).__name__ == "LSTM")


def _check(model, config):
    for key, value in RECORDED.items():
        assert config[key] == value, key
    lstm = _lstm(model)
    assert lstm.layer_norm and lstm.proj_size == 3 and lstm.recurrent_dropout == 0.2
    assert lstm.zoneout == (0.1, 0.1) and lstm.num_layers == 2


def test_forecast_takes_the_model_options(tmp_path, capsys):
    import lstmlens

    out = tmp_path / "run"
    argv = ["forecast", "train", str(_csv(tmp_path / "s.csv")), "--window", "6", "--hidden", "4"]
    assert main([*argv, *EXTRA, "--epochs", "1", "--quiet", "--no-lens", "--out", str(out)]) == 0
    forecaster, config = lstmlens.load_run(out)
    net = dict(config["net"], num_layers=config["net"]["num_layers"])
    _check(forecaster.net, net)
    assert forecaster.net.head.in_features == 3  # the head reads the projection
    assert json.loads((out / "metrics.json").read_text())["training"]["epochs_run"] == 1


def test_text_takes_the_model_options(tmp_path, capsys):
    import lstmlens

    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    out = tmp_path / "run"
    argv = ["text", "train", str(corpus), "--hidden", "4", "--embed-dim", "3", "--seq-len", "8"]
    argv += ["--batch-size", "4", "--epochs", "1", "--quiet", "--no-lens", "--out", str(out)]
    assert main([*argv, *EXTRA]) == 0
    model, config = lstmlens.load_run(out)
    _check(model, config["model"])


def test_classify_takes_the_model_options_and_bidirectional(tmp_path, capsys):
    import lstmlens

    out = tmp_path / "run"
    argv = ["classify", "train", "--hidden", "4", "--epochs", "1", "--batch-size", "128"]
    assert main([*argv, *EXTRA, "--bidirectional", "--quiet", "--out", str(out)]) == 0
    model, config = lstmlens.load_run(out)
    _check(model, config["model"])
    assert config["model"]["bidirectional"] and model.head.in_features == 2 * 3


@pytest.mark.parametrize(
    ("argv", "old", "new"),
    [
        (["text", "train", "--embed", "8"], "--embed", "--embed-dim"),
        (["classify", "train", "--batch", "8"], "--batch", "--batch-size"),
        (["forecast", "train", "--batch", "8"], "--batch", "--batch-size"),
        (["longrange", "adding", "--batch", "8"], "--batch", "--batch-size"),
        (["longrange", "adding", "--json", "x.json"], "--json", "--output"),
    ],
)
def test_old_spellings_work_with_a_note(argv, old, new, capsys):
    args = build_parser().parse_args(argv)
    dest = new.lstrip("-").replace("-", "_")
    assert str(getattr(args, dest)) in ("8", "x.json")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old} is deprecated, use {new}" in err


def test_device(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["text", "train", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device cuda: CUDA is not available" in err
    assert not (tmp_path / "r").exists()
    assert main(["classify", "train", "--device", "gpu"]) == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err


def test_backtest_has_no_resume(capsys):
    assert main(["forecast", "backtest", "--resume"]) == 2
    assert "unrecognized arguments: --resume" in capsys.readouterr().err


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["text", "train"], ["hidden units (256)", "learning rate (0.002)", "epochs (10)"]),
        (["forecast", "train"], ["hidden units (32)", "learning rate (0.003)", "epochs (200)"]),
        (["classify", "train"], ["hidden units (64)", "learning rate (0.003)", "epochs (30)"]),
        (["longrange", "adding"], ["hidden units (64)", "initial forget-gate bias (1.0)"]),
    ],
)
def test_help_shows_the_defaults_in_force(argv, shown, capsys):
    text = _help(argv, capsys)
    for piece in shown:
        assert piece in text


COMMANDS = [["forecast", "train"], ["forecast", "predict"], ["forecast", "backtest"],
            ["text", "train"], ["text", "generate"], ["text", "next"], ["classify", "train"],
            ["classify", "predict"], ["longrange"], ["inspect"], ["export"]]  # fmt: skip


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_is_plain_text_with_an_example(argv, capsys):
    text = _help(argv, capsys)
    assert "example" in text
    for markup in ("``", ":func:", ":class:", ":data:", "DESIGN"):
        assert markup not in text, markup


def test_device_resolution(monkeypatch):
    import argparse

    from lstmlens.cli.common import CLIError, cpu_device, resolve_device

    def args(device):
        return argparse.Namespace(device=device)

    assert resolve_device(args("auto")) == "cpu" and resolve_device(args("cpu")) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(args("auto")) == "cuda" and resolve_device(args("cuda")) == "cuda"
    assert cpu_device(args("auto"), "training") == "cpu"
    with pytest.raises(CLIError, match="--device cuda: training runs on the CPU in this release"):
        cpu_device(args("cuda"), "training")
