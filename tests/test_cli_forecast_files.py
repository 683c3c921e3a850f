"""``lstmlens forecast`` on real-world files: dialects, gaps, integer time, ``--baselines``,
the baselines' season bound; bad files -> exit 2, one line, nothing written."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlens.cli.main import main

COMMA_DECIMAL = str.maketrans(",.", ".,")  # 1,234.56 -> 1.234,56
TINY = ["--window", "12", "--horizon", "3", "--hidden", "4", "--epochs", "1", "--quiet"]


def series_csv(
    path: Path,
    n: int = 96,
    sep: str = ",",
    decimal: str = ".",
    skip: tuple[int, ...] = (),
    reverse: bool = False,
    time: str = "month",
) -> Path:
    """A seasonal monthly series (values near 1000, so decimal commas come with a
    thousands point) in the given dialect; ``skip`` leaves rows out."""
    t = np.arange(n)
    y = 1000 + 2 * t + 50 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 3, n)
    stamps = pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    if time == "step":
        stamps = [str(10 + 2 * i) for i in range(n)]
    rows = []
    for i in range(n):
        if i in skip:
            continue
        value = f"{y[i]:.2f}" if decimal == "." else f"{y[i]:,.2f}".translate(COMMA_DECIMAL)
        rows.append(f"{value}{sep}{stamps[i]}")  # the time column comes second
    rows = rows[::-1] if reverse else rows
    path.write_text(f"sales{sep}{time}\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["forecast", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def forecast_dates(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    return [r[0] for r in rows[1:]]


def test_semicolons_and_decimal_commas_train_and_predict(tmp_path, capsys):
    data = series_csv(tmp_path / "de.csv", sep=";", decimal=",")
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out", str(out),
                          "--baselines", "naive,seasonal_naive", "--no-lens", *TINY)  # fmt: skip
    assert code == 0, err
    assert "read as ';'-separated, decimal commas" in text
    assert "'sales', 96 rows (2000-01-01 .. 2007-12-01, frequency MS)" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive"}
    assert metrics["baselines"]["naive"]["mae"] < 200  # numbers near 1000, not garbage
    code, text, err = run(capsys, "predict", str(out), "--steps", "2")
    assert code == 0, err
    assert forecast_dates(text) == ["2008-01-01", "2008-02-01"]
    assert "read as ';'-separated" in err  # the reader's notes go to stderr, not the CSV


def test_gaps_refused_without_fill_then_filled_with_dates_right_after(tmp_path, capsys):
    data = series_csv(tmp_path / "gaps.csv", skip=(40, 41, 70))
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out", str(out),
                          "--baselines", "naive", "--no-lens", *TINY)  # fmt: skip
    assert code == 2 and text == "" and not out.exists()
    assert err.count("\n") == 1 and err.startswith("lstmlens: error: 3 missing timestamp(s)")
    assert "(first 2003-05-01; the rows have frequency MS)" in err
    assert "needs a regular time grid; fill them with --fill interpolate" in err
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out", str(out),
                          "--baselines", "naive", "--fill", "interpolate", "--no-lens", *TINY)  # fmt: skip
    assert code == 0, err
    assert "3 missing timestamp(s) (first 2003-05-01) added on the regular grid" in text
    assert "96 rows (2000-01-01 .. 2007-12-01, frequency MS)" in text
    code, text, err = run(capsys, "predict", str(out), "--steps", "3")
    assert code == 0, err
    assert text.startswith("date,forecast,q0.1,q0.5,q0.9\n")  # default quantiles
    assert forecast_dates(text) == ["2008-01-01", "2008-02-01", "2008-03-01"]


def test_integer_time_second_column_and_reversed_rows(tmp_path, capsys):
    data = series_csv(tmp_path / "steps.csv", time="step", reverse=True)
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out", str(out),
                          "--baselines", "naive", "--no-lens", *TINY)  # fmt: skip
    assert code == 0, err
    assert "rows run newest first: sorted oldest first" in text
    assert "96 rows (10 .. 200)" in text  # steps, not nanoseconds since 1970
    code, text, err = run(capsys, "predict", str(out), "--steps", "2")
    assert code == 0, err
    assert text.startswith("step,forecast,q0.1,q0.5,q0.9\n") and forecast_dates(text) == [
        "202",
        "204",
    ]


def test_baselines_none_and_a_list(tmp_path, capsys):
    data = series_csv(tmp_path / "s.csv")
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out",
                          str(tmp_path / "none"), "--baselines", "none", "--no-lens", *TINY)  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert metrics["baselines"] == {} and metrics["skipped_baselines"] == {}
    table_rows = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert "LSTM" in table_rows and not set(table_rows) & {"naive", "seasonal_naive", "ets"}
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out",
                          str(tmp_path / "two"), "--baselines", "theta,drift", "--no-lens", *TINY)  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert list(metrics["baselines"]) == ["drift", "theta"]  # report order
    assert metrics["baseline_models"]["theta"].startswith("Theta(alpha=")
    assert "baseline theta: fitting on" in (tmp_path / "two" / "train.log").read_text()


@pytest.mark.slow
def test_a_season_too_long_for_ets_and_arima_is_declined_in_output_and_metrics(tmp_path, capsys):
    data = series_csv(tmp_path / "long.csv", n=200)
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", str(data), "--target", "sales", "--out", str(out),
                          "--season", "60", "--no-lens", *TINY)  # fmt: skip
    assert code == 0, err
    note = "season 60 is too long to fit (limit 52 steps); give a shorter --season"
    for name in ("ets", "arima"):
        assert f"{name} left out: {note}" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["skipped_baselines"]) == {"ets", "arima"}
    assert all(note in why for why in metrics["skipped_baselines"].values())
    assert {"naive", "seasonal_naive", "drift", "theta"} == set(metrics["baselines"])
    assert metrics["test"]["season"] == 60


BAD = [
    ("ragged.csv", "date;value\n2000-01-01;1;2\n2000-02-01;3\n", [],
     r"cannot determine the CSV dialect of .*ragged\.csv: no separator"),
    ("mixed.csv", "date;sales\n2000-01-01;1,5\n2000-02-01;2.5\n", [],
     r"mixes decimal commas \(line 2: '1,5'\) and decimal points"),
    ("text.csv", "date;sales\n2000-01-01;1,5\n2000-02-01;n/a!\n", [],
     "target column 'sales' is not numeric: line 3 holds 'n/a!'"),
    ("s.csv", None, ["--baselines", "naive,prophet"], "unknown baseline 'prophet'"),
    ("s.csv", None, ["--sep", "ab"], "--sep must be one character"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "extra", "pattern"), BAD)
def test_bad_files_are_one_line_exit_2_and_write_nothing(
    tmp_path, capsys, name, text, extra, pattern
):

    data = tmp_path / name
    if text is None:
        series_csv(data)
    else:
        data.write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, "train", str(data), "--target", "sales", "--out",
                         str(tmp_path / "run"), *extra, *TINY)  # fmt: skip
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("lstmlens: error: ") and "Traceback" not in err
    assert re.search(pattern, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_backtest_reads_the_dialect_and_takes_baselines(tmp_path, capsys):
    data = series_csv(tmp_path / "de.csv", sep=";", decimal=",")
    code, text, err = run(capsys, "backtest", str(data), "--target", "sales", "--folds", "2",
                          "--baselines", "naive", "--output", str(tmp_path / "bt.json"), *TINY)  # fmt: skip
    assert code == 0, err
    assert "read as ';'-separated, decimal commas" in text
    result = json.loads((tmp_path / "bt.json").read_text())
    assert set(result["mean"]) == {"model", "naive"}
    assert all(set(fold["baselines"]) == {"naive"} for fold in result["folds"])
    assert result["data"]["sep"] is None  # detected again on every read
