"""Untrusted run folders (issue 17, item 4): the config schema, sizes against the header, no links.

Every reproduction of the issue fails on the code before this change (OOM kill, traceback, NaN
forecasts accepted, a file outside the folder appended to, a secret's first line printed) and
is here one line and exit 2 from every command that loads a run, ``ValueError`` from the library.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import pytest

import lstmlens
from lstmlens.cli.main import main
from lstmlens.runfiles import read_header
from lstmlens.runschema import check_config, check_run
from lstmlens.tasks.forecast import Forecaster
from lstmlens.tasks.language import load_language_model
from lstmlens.train import Reporter
from runfolders import classify_run, edit_config, forecast_run, language_run, series_csv


@pytest.fixture
def forecast(tmp_path: Path) -> Path:
    return forecast_run(tmp_path / "fc", series_csv(tmp_path / "y.csv"))


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    data = series_csv(tmp_path / "y.csv")
    return {
        "forecast": forecast_run(tmp_path / "fc", data),
        "language": language_run(tmp_path / "lm"),
        "classify": classify_run(tmp_path / "cl", tmp_path / "seq.csv"),
    }


def commands(kind: str, run: Path) -> list[list[str]]:
    """Every command that loads a run of ``kind``."""
    out = str(run.parent / "out.file")
    common = [["export", str(run), "--output", out]]
    if kind != "classify":  # inspect reads forecast and text runs
        common.append(["inspect", str(run), "--html", out])
    own = {
        "forecast": [["forecast", "predict", str(run), "--data", str(run.parent / "y.csv")]],
        "language": [
            ["text", "generate", str(run), "--length", "5", "--seed", "1"],
            ["text", "next", str(run), "to be"],
        ],
        "classify": [["classify", "predict", str(run), str(run.parent / "seq.csv")]],
    }[kind]
    return own + common


def one_line_exit_2(capsys, argv: list[str], *expected: str) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("lstmlens: error: "), err
    for text in expected:
        assert text in err, (argv, err)
    return err


def test_valid_runs_load_and_predict(runs, capsys):
    for run in runs.values():
        check_run(run)
    assert main(commands("forecast", runs["forecast"])[0]) == 0
    assert main(commands("language", runs["language"])[1]) == 0
    assert main(commands("classify", runs["classify"])[0]) == 0


# (kind, field, value, words of the message): the reproductions first
TAMPERING = [
    ("forecast", "net.num_layers", 1_000_000, "net.num_layers must be an integer in [1, 64]"),
    ("forecast", "net.hidden_size", 10**12, "net.hidden_size"),
    ("forecast", "scaler.mean", [math.inf], "scaler.mean must be a list of finite numbers"),
    ("forecast", "forecast.log", "no", "forecast.log must be true, false or null"),
    ("forecast", "net.num_layers", 2, "num_layers is 2, but model.safetensors holds 1"),
    ("forecast", "net.hidden_size", 5, "hidden_size is 5, but model.safetensors holds 4"),
    ("forecast", "scaler.scale", [0.0], "scaler.scale must be a list of numbers > 0"),
    ("forecast", "net.n_outputs", 3, "head.weight of shape [3, 4]"),
    ("forecast", "net.variant", {"peepholes": "yes"}, "net.variant"),
    ("language", "model.num_layers", 1e6, "model.num_layers must be an integer"),
    ("language", "model.hidden_size", 10**12, "model.hidden_size"),
    ("language", "model.embed_size", 7, "the input size is 7"),
    ("language", "model.zoneout", math.nan, "model.zoneout"),
    ("language", "tokenizer.tokens", ["a"], "embedding.weight"),
    ("classify", "model.num_layers", 1_000_000, "model.num_layers"),
    ("classify", "model.bidirectional", True, "the number of directions is 2"),
    ("classify", "model.std", [-1.0], "model.std"),
    ("classify", "model.num_classes", 3, "classes must be a list of model.num_classes"),
]


@pytest.mark.parametrize(("kind", "field", "value", "words"), TAMPERING)
def test_tampered_config_is_one_line_exit_2_from_every_command(
    runs, capsys, kind, field, value, words
):
    run = runs[kind]
    edit_config(run, field, value)
    with pytest.raises(ValueError, match="config.json"):
        check_run(run)
    for argv in commands(kind, run):
        one_line_exit_2(capsys, argv, "config.json", words)


def test_library_loaders_raise_value_error_before_building(forecast, runs):
    edit_config(forecast, "net.num_layers", 1_000_000)  # an OOM kill before the schema
    with pytest.raises(ValueError, match="net.num_layers"):
        Forecaster.load(forecast)
    edit_config(runs["language"], "model.hidden_size", 10**12)  # a traceback before
    with pytest.raises(ValueError, match="model.hidden_size"):
        load_language_model(runs["language"])


def test_check_config_names_type_not_just_value():
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        check_config([1, 2])
    assert check_config({"task": "someday"}) is None  # a kind without a schema: loaders decide


def test_truncated_weights_are_refused_from_the_header(forecast, capsys):
    weights = forecast / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 10])
    with pytest.raises(ValueError, match="truncated"):
        read_header(weights)
    one_line_exit_2(capsys, commands("forecast", forecast)[0], "truncated")


def test_a_header_claiming_terabytes_is_refused_without_reading(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    raw = json.dumps(header).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)
    with pytest.raises(ValueError, match="beyond the end of the file"):
        read_header(tmp_path / "m.safetensors")
    (tmp_path / "h.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_header(tmp_path / "h.safetensors")


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_run_files_are_never_read_through_a_symlink(forecast, capsys, tmp_path, name):
    elsewhere = tmp_path / f"elsewhere-{name}"
    os.replace(forecast / name, elsewhere)
    (forecast / name).symlink_to(elsewhere)
    with pytest.raises(ValueError, match="symbolic link"):
        Forecaster.load(forecast)
    one_line_exit_2(capsys, commands("forecast", forecast)[0], name, "symbolic link")


def test_train_log_is_never_appended_through_a_symlink(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n", encoding="utf-8")
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").symlink_to(outside)
    with pytest.raises(ValueError, match="train.log: is a symbolic link"):
        Reporter(quiet=True, log_path=run / "train.log")
    reporter = Reporter(quiet=True, log_path=run / "fresh.log")
    (run / "fresh.log").symlink_to(outside)  # planted after the reporter was made
    with pytest.raises(ValueError, match="symbolic link"):
        reporter.message("hello")
    assert outside.read_text(encoding="utf-8") == "precious\n"


def test_train_resume_refuses_a_symlinked_log(forecast, capsys, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n", encoding="utf-8")
    (forecast / "train.log").symlink_to(outside)
    argv = ["forecast", "train", str(tmp_path / "y.csv"), "--target", "y", "--window", "4"]
    argv += ["--epochs", "1", "--hidden", "4", "--baselines", "none", "--out", str(forecast)]
    assert main([*argv, "--force", "--quiet"]) == 2
    assert "train.log" in capsys.readouterr().err
    assert outside.read_text(encoding="utf-8") == "precious\n"


def test_data_path_is_a_hint_never_printed_from(forecast, capsys, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000\n", encoding="utf-8")
    edit_config(forecast, "data.path", str(secret))
    err = one_line_exit_2(capsys, ["forecast", "predict", str(forecast)], "config.json", "--data")
    assert "SECRETHASH" not in err and "daemon" not in err
    edit_config(forecast, "data.path", "/dev/zero")  # not a regular file: never opened
    one_line_exit_2(capsys, ["forecast", "predict", str(forecast)], "--data")


def test_load_run_checks_the_schema_for_every_kind(runs):
    for kind, run in runs.items():
        model, config = lstmlens.load_run(run)
        assert isinstance(config, dict), kind
    edit_config(runs["classify"], "model.hidden_size", 10**12)
    with pytest.raises(ValueError, match="model.hidden_size must be an integer"):
        lstmlens.load_run(runs["classify"])
