"""Bounds on every argument (issue 17, item 6) and a closed standard output.

The reproductions of the issue, each failing before this change: ``--hidden 1000000000`` and
``--threads 100000`` ended in tracebacks, ``--layers 100000`` and ``predict --steps 1000000``
ran for minutes, ``backtest --folds 1000`` reported "-799 rows", and ``forecast train ... |
head -3`` ended with "Broken pipe", exit 2 and no lens page.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

from lstmlens.cli.argtypes import HIDDEN, bounded_float, bounded_int
from lstmlens.cli.main import build_parser, main
from lstmlens.limits import MAX_HIDDEN, MAX_LAYERS, MAX_STEPS, MAX_THREADS
from runfolders import forecast_run, language_run, series_csv


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    data = series_csv(tmp_path / "y.csv")
    return {"forecast": forecast_run(tmp_path / "fc", data), "text": language_run(tmp_path / "lm")}


def one_line_exit_2(capsys, argv: list[str], *expected: str) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for text in expected:
        assert text in err, (argv, err)
    return err


TRAIN = ["forecast", "train", "--quiet"]
REPRODUCTIONS = [
    ([*TRAIN, "--hidden", "1000000000"], f"--hidden: expected an integer in [1, {MAX_HIDDEN}]"),
    ([*TRAIN, "--threads", "100000"], f"--threads: expected an integer in [0, {MAX_THREADS}]"),
    ([*TRAIN, "--layers", "100000"], f"--layers: expected an integer in [1, {MAX_LAYERS}]"),
    (["text", "train", "--hidden", "1000000000"], "--hidden: expected an integer"),
    (["text", "train", "--layers", "100000"], "--layers: expected an integer"),
    (["text", "train", "--embed", "-3"], "--embed: expected an integer"),
    (["text", "train", "--seq-len", "0"], "--seq-len: expected an integer"),
    (["classify", "train", "--hidden", "1000000000"], "--hidden: expected an integer"),
    (["forecast", "backtest", "--folds", "1000"], "--folds: expected an integer in [1, 100]"),
    (["longrange", "adding", "--hidden", "1000000000"], "--hidden: expected an integer"),
    ([*TRAIN, "--hidden", "1" * 5000], "--hidden: expected an integer"),
    ([*TRAIN, "--lr", "inf"], "--lr"),
]


@pytest.mark.parametrize(("argv", "words"), REPRODUCTIONS)
def test_out_of_bounds_arguments_are_one_line_exit_2(capsys, argv, words):
    one_line_exit_2(capsys, argv, words)


def test_predict_steps_and_generate_length_are_capped(runs, capsys):
    steps = ["forecast", "predict", str(runs["forecast"]), "--steps", "1000000"]
    one_line_exit_2(capsys, steps, f"--steps: expected an integer in [1, {MAX_STEPS}]")
    length = ["text", "generate", str(runs["text"]), "--length", "100000000"]
    one_line_exit_2(capsys, length, "--length: expected an integer")
    one_line_exit_2(capsys, ["text", "next", str(runs["text"]), "to", "--top", "0"], "--top")


def test_backtest_folds_that_do_not_fit_the_data_are_named(tmp_path, capsys):
    data = series_csv(tmp_path / "y.csv", rows=80)
    argv = ["forecast", "backtest", str(data), "--target", "y", "--window", "4", "--folds", "100"]
    err = one_line_exit_2(capsys, [*argv, "--baselines", "none", "--quiet"], "100 folds")
    assert "at most" in err and "-" not in err.split("at most")[1]


def test_help_states_the_caps():
    parser = build_parser()
    actions = {
        a.dest: a
        for a in parser._subparsers._group_actions[0]
        .choices["forecast"]  # noqa: SLF001
        ._subparsers._group_actions[0]
        .choices["train"]
        ._actions
    }  # noqa: SLF001
    assert f"at most {MAX_HIDDEN}" in actions["hidden"].help
    assert f"at most {MAX_LAYERS}" in actions["layers"].help
    assert f"at most {MAX_THREADS}" in actions["threads"].help


def test_bounded_types_say_what_was_expected():
    assert HIDDEN(" 12 ") == 12
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer in \[1, 8192\]"):
        HIDDEN("8193")
    with pytest.raises(argparse.ArgumentTypeError, match="got '1111"):
        bounded_int(0, 5)("1" * 5000)  # refused by length, not after a slow conversion
    probability = bounded_float(0.0, 1.0, open_high=True)
    assert probability("0.5") == 0.5
    for text in ("1", "nan", "-0.1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"a number in \[0.0, 1.0\)"):
            probability(text)


def _with_closed_stdout(argv: list[str]) -> int:
    """``main(argv)`` with a standard output whose reader has gone (``| head`` that exited)."""
    read, write = os.pipe()
    os.close(read)
    saved_fd, saved = os.dup(1), sys.stdout
    os.dup2(write, 1)
    os.close(write)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (line-buffered: a write hits the pipe)
    try:
        return main(argv)
    finally:
        sys.stdout = saved
        os.dup2(saved_fd, 1)
        os.close(saved_fd)


def test_a_closed_stdout_ends_predict_quietly(runs, capsys):
    argv = [
        "forecast",
        "predict",
        str(runs["forecast"]),
        "--data",
        str(runs["forecast"].parent / "y.csv"),
    ]
    assert _with_closed_stdout([*argv, "--steps", "50"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_closed_stdout_ends_train_quietly_after_the_run_is_saved(tmp_path, capsys):
    data = series_csv(tmp_path / "y.csv", rows=80)
    argv = ["forecast", "train", str(data), "--target", "y", "--window", "4", "--hidden", "4"]
    argv += ["--epochs", "1", "--baselines", "none", "--out", str(tmp_path / "run")]
    assert _with_closed_stdout(argv) == 0
    assert "Broken pipe" not in capsys.readouterr().err
    for name in ("model.safetensors", "metrics.json", "lens.html"):
        assert (tmp_path / "run" / name).is_file(), name
