"""``lstmlens forecast train`` on many series: long and wide tables, ltsf, bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from lstmlens.cli.main import main

TINY = ["--window", "12", "--horizon", "6", "--hidden", "8", "--epochs", "2", "--quiet"]


def _long(tmp_path, n=4, length=48):
    rows = []
    for s in range(n):
        dates = pd.date_range("2001-01-01", periods=length - 2 * s, freq="MS")
        y = 50 + 10 * s + np.sin(np.arange(len(dates)) / 2)
        rows.append(pd.DataFrame({"shop": f"s{s}", "month": dates.strftime("%Y-%m"), "units": y}))
    path = tmp_path / "long.csv"
    pd.concat(rows).to_csv(path, index=False)
    return path


def test_long_table_trains_one_global_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["forecast", "train", str(_long(tmp_path)), "--id", "shop", "--date", "month",
                 "--target", "units", "--season", "12", "--out", str(out), *TINY])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [s["id"] for s in metrics["per_series"]] == ["s0", "s1", "s2", "s3"]
    assert {"naive", "seasonal_naive"} <= set(metrics["baselines"])
    assert "model" in capsys.readouterr().out


def test_wide_table_ltsf_protocol(tmp_path, capsys):
    t = np.arange(120)
    frame = pd.DataFrame({"t": t, "a": np.sin(t / 3), "b": np.cos(t / 5), "label": "x"})
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    code = main(["forecast", "train", str(path), "--target", "all", "--date", "t",
                 "--protocol", "ltsf", "--split", "60,30,30", "--out", str(out), *TINY])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_windows"] == 2 * (30 - 6 + 1)
    assert set(metrics["model"]) == {"mse", "mae"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "units", "--date", "month"], "--id"),
        (["--id", "shop", "--target", "units", "--horizon", "40"], "no series has the"),
        (["--id", "nope", "--target", "units"], "no column 'nope'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    argv = ["forecast", "train", str(_long(tmp_path)), "--out", str(out), *TINY, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
