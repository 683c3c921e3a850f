"""``lstmlens forecast train`` on many series: long and wide tables, ltsf, bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from lstmlens.cli.main import main

TINY = ["--window", "12", "--horizon", "6", "--hidden", "8", "--epochs", "2", "--quiet",
        "--baselines", "naive,seasonal_naive"]  # fmt: skip


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


def _train(tmp_path, out, *extra):
    argv = ["forecast", "train", str(_long(tmp_path)), "--id", "shop", "--date", "month",
            "--target", "units", "--season", "12", "--out", str(out), *TINY, *extra]  # fmt: skip
    assert main(argv) == 0
    return out


def _weights(run):
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("lstmlens: error: ") and err.count("\n") == 1, err
    return err


def test_predict_writes_one_long_csv_for_every_series(tmp_path, capsys):
    run = _train(tmp_path, tmp_path / "run", "--quantiles", "0.1,0.5,0.9")
    out = tmp_path / "next.csv"
    assert main(["forecast", "predict", str(run), "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["id", "date", "value", "q0.1", "q0.5", "q0.9"]
    assert table.groupby("id", sort=False).size().to_dict() == {f"s{s}": 6 for s in range(4)}
    # each series continues after its own end: s0 has 48 months from 2001-01, s3 has 42
    assert table.date[table.id == "s0"].tolist()[:2] == ["2005-01-01", "2005-02-01"]
    assert table.date[table.id == "s3"].iloc[0] == "2004-07-01"
    assert (table["q0.1"] <= table["q0.5"]).all() and (table["q0.5"] <= table["q0.9"]).all()
    from lstmlens.data.panel import read_panel
    from lstmlens.tasks.global_predict import panel_forecast

    panel = read_panel(_long(tmp_path), "units", "shop", "month")
    rows, point, _, levels, skipped = panel_forecast(run, panel)
    assert rows == [0, 1, 2, 3] and levels == (0.1, 0.5, 0.9) and skipped == []
    np.testing.assert_allclose(table.value.to_numpy(), point.ravel(), rtol=1e-5)
    capsys.readouterr()
    assert main(["forecast", "predict", str(run), "--steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id,date,value,q0.1,q0.5,q0.9" and len(lines) == 1 + 4 * 2


def test_predict_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    run = _train(tmp_path, tmp_path / "run")
    out = tmp_path / "next.csv"
    assert main(["forecast", "predict", str(run), "--steps", "7", "--output", str(out)]) == 2
    assert "at most its horizon (6 steps)" in _one_line(capsys)
    other = tmp_path / "other.csv"
    pd.read_csv(_long(tmp_path)).replace({"shop": {"s2": "new"}}).to_csv(other, index=False)
    argv = ["forecast", "predict", str(run), "--data", str(other), "--output", str(out)]
    assert main(argv) == 2
    assert "series 'new' was not in the run's training data" in _one_line(capsys)
    assert not out.exists()


def test_backtest_across_series(tmp_path, capsys):
    out = tmp_path / "bt.json"
    argv = ["forecast", "backtest", str(_long(tmp_path)), "--id", "shop", "--date", "month",
            "--target", "units", "--season", "12", "--folds", "2", "--output", str(out), *TINY]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert len(result["folds"]) == 2 and set(result["mean"]) == {"model", "naive", "seasonal_naive"}
    assert result["folds"][0]["series"] == 4
    maes = [f["model"]["mae"] for f in result["folds"]]
    assert result["mean"]["model"]["mae"] == pytest.approx(np.mean(maes))
    assert "mean over 2 folds" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_continues_exactly_and_refuses_other_data(tmp_path, capsys):
    whole = _train(tmp_path, tmp_path / "whole", "--epochs", "3")
    part = _train(tmp_path, tmp_path / "part", "--epochs", "1")
    _train(tmp_path, part, "--epochs", "3", "--resume")
    a, b = _weights(whole), _weights(part)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    before = {p.name: p.read_bytes() for p in part.iterdir() if p.is_file() and p.name[0] != "."}
    capsys.readouterr()
    for extra in (["--horizon", "3"], ["--season", "6"]):
        argv = ["forecast", "train", str(_long(tmp_path)), "--id", "shop", "--date", "month",
                "--target", "units", "--season", "12", "--out", str(part), *TINY, *extra,
                "--epochs", "4", "--resume"]  # fmt: skip
        assert main(argv) == 2
        assert "differs" in _one_line(capsys)
    edited = tmp_path / "edited.csv"
    pd.read_csv(_long(tmp_path)).assign(units=lambda f: f.units + 1).to_csv(edited, index=False)
    argv = ["forecast", "train", str(edited), "--id", "shop", "--date", "month", "--target",
            "units", "--season", "12", "--out", str(part), *TINY, "--resume"]  # fmt: skip
    assert main(argv) == 2
    assert "run.data.sha256 differs" in _one_line(capsys)
    after = {p.name: p.read_bytes() for p in part.iterdir() if p.is_file() and p.name[0] != "."}
    assert after == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--id", "shop", "--target", "units", "--static", "nope"], "no column 'nope'"),
        (["--id", "shop", "--target", "units", "--static", "shop"], "not a number"),
        (["--target", "units", "--static", "units"], "--id"),
    ],
)
def test_static_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    assert main(["forecast", "train", str(_long(tmp_path)), "--out", str(out), *TINY, *extra]) == 2
    assert message in _one_line(capsys)
    assert not out.exists()


def test_static_and_id_embedding_from_the_command_line(tmp_path):
    frame = pd.read_csv(_long(tmp_path))
    frame["size"] = frame.shop.str[1:].astype(float) * 10
    path = tmp_path / "static.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    argv = ["forecast", "train", str(path), "--id", "shop", "--date", "month", "--target",
            "units", "--static", "size", "--id-embedding", "4", "--out", str(out), *TINY,
            "--cell", "gru", "--loss", "smape", "--scaling", "mean", "--season", "12"]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["net"]["id_embedding"] == 4 and config["net"]["static"] == 1
    assert config["net"]["cell"] == "gru" and config["options"]["loss"] == "smape"
    assert config["scaler"]["mean"] == [0.0] * 4 and len(config["season_index"]["index"]) == 4
    assert config["static"]["names"] == ["size"] and config["data"]["static"] == ["size"]
    assert main(["forecast", "predict", str(out), "--output", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 4 * 6


def test_the_single_series_path_is_unchanged(tmp_path, capsys):
    frame = pd.read_csv(_long(tmp_path))
    one = tmp_path / "one.csv"
    frame[frame.shop == "s0"][["month", "units"]].to_csv(one, index=False)
    out = tmp_path / "run"
    argv = ["forecast", "train", str(one), "--target", "units", "--window", "12", "--horizon",
            "3", "--hidden", "4", "--epochs", "1", "--members", "1", "--quiet", "--no-lens",
            "--baselines", "naive", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert "kind" not in config and "per_series" not in json.loads(
        (out / "metrics.json").read_text()
    )
    capsys.readouterr()
    assert main(["forecast", "predict", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("date,forecast")


@pytest.mark.slow
def test_nproc_2_trains_the_one_process_model_and_writes_one_set_of_files(tmp_path, monkeypatch):
    import torch

    from lstmlens.cli import launch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # import torch._dynamo before forking
    monkeypatch.setattr(launch, "START_METHOD", "fork")
    one = _train(tmp_path, tmp_path / "one", "--batch-size", "8")
    two = _train(tmp_path, tmp_path / "two", "--batch-size", "8", "--nproc", "2")
    a, b = _weights(one), _weights(two)
    # float32: two half-batch means vs one mean round differently (the float64 library test
    # holds 1e-10); Adam can turn that into up to one lr step on near-zero gradients
    flat = np.sort(np.concatenate([(a[k] - b[k]).abs().flatten().numpy() for k in a]))
    assert flat[-1] <= 3e-3 and flat[int(0.9 * len(flat))] <= 1e-4
    names = lambda run: sorted(p.name[:11] for p in run.iterdir())  # noqa: E731
    assert names(one) == names(two)
    assert json.loads((two / "checkpoint.json").read_text())["world_size"] == 2
    metrics = json.loads((two / "metrics.json").read_text())
    assert len(metrics["per_series"]) == 4
