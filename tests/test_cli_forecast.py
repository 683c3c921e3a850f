"""``lstmlens forecast train|predict|backtest`` in-process: run folders, tables, bad input."""

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from lstmlens.cli.main import main

TINY = ["--window", "12", "--horizon", "3", "--hidden", "4", "--quiet"]


def write_csv(
    path: Path, n: int = 100, nan_at: int | None = None, bad_row: int | None = None
) -> Path:
    t = np.arange(n)
    y = 50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.5, n)
    dates = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(n)]
    lines = ["month,sales,temp"]
    for i in range(n):
        value = "" if i == nan_at else ("n/a!" if i == bad_row else f"{y[i]:.3f}")
        lines.append(f"{dates[i]},{value},{np.cos(i):.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["forecast", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fc")
    data = write_csv(root / "sales.csv")
    out = root / "run"
    code = main(["forecast", "train", str(data), "--target", "sales", "--out", str(out),
                 "--epochs", "2", "--quantiles", "0.1,0.5,0.9", *TINY])  # fmt: skip
    assert code == 0
    return data, out


def test_train_writes_the_run_folder(trained, capsys):
    data, out = trained
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "forecast.png",
            "training_curve.png", "train.log"} <= names  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["model"]) == {"mae", "rmse", "smape", "mase", "coverage", "pinball"}
    assert {"naive", "seasonal_naive", "drift", "ets", "arima"} <= set(metrics["baselines"])
    assert metrics["test"]["rows"] == 3 and metrics["test"]["season"] == 12  # the last H rows
    assert metrics["training"]["epochs_run"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["target"] == "sales" and config["forecast"]["horizon"] == 3
    assert "seasonal_naive" in (out / "train.log").read_text()  # the table is logged
    assert (out / "forecast.png").read_bytes()[:4] == b"\x89PNG"


def test_train_prints_the_metrics_table(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv")
    code, out, err = run(capsys, "train", str(data), "--target", "sales", "--covariates", "temp",
                         "--out", str(tmp_path / "r"), "--epochs", "1", "--mode", "recursive",
                         *TINY)  # fmt: skip
    assert code == 0, err
    assert "2000-01-01 .. 2008-04-01" in out and "covariates temp" in out
    lines = out.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:4] == ["MAE", "RMSE", "sMAPE%", "MASE"]
    )
    rows = [line.split()[0] for line in lines[header + 1 : header + 8]]
    assert rows == ["LSTM", "naive", "seasonal_naive", "drift", "ets", "theta", "arima"]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert f"{metrics['model']['mae']:.4g}" == lines[header + 1].split()[1]
    assert "run saved in" in out


def test_predict_writes_dates_after_the_data(trained, capsys, tmp_path):
    data, out = trained
    code, text, err = run(capsys, "predict", str(out), "--steps", "5")
    assert code == 0, err
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["date", "forecast", "q0.1", "q0.5", "q0.9"]
    assert [r[0] for r in rows[1:]] == [
        "2008-05-01",
        "2008-06-01",
        "2008-07-01",
        "2008-08-01",
        "2008-09-01",
    ]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_array_equal(values[:, 0], values[:, 2])  # the point forecast is q0.5
    assert np.all(values[:, 1] <= values[:, 2]) and np.all(values[:, 2] <= values[:, 3])
    target = tmp_path / "f.csv"
    code, text, _ = run(capsys, "predict", str(out), "--data", str(data), "--output", str(target))
    assert code == 0 and len(target.read_text().splitlines()) == 4  # header + horizon 3
    before = target.read_bytes()
    code, _, err = run(capsys, "predict", str(out), "--output", str(target), "--steps", "7")
    assert code == 2 and "exists; use --force" in err and target.read_bytes() == before


def test_resume_matches_an_uninterrupted_run(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv")
    args = [str(data), "--target", "sales", *TINY]
    assert main(["forecast", "train", *args, "--out", str(tmp_path / "a"), "--epochs", "2"]) == 0
    assert (
        main(
            ["forecast", "train", *args, "--out", str(tmp_path / "a"), "--epochs", "4", "--resume"]
        )
        == 0
    )
    assert main(["forecast", "train", *args, "--out", str(tmp_path / "b"), "--epochs", "4"]) == 0
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    ma = json.loads((tmp_path / "a" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert ma["model"] == mb["model"] and ma["training"]["epochs_run"] == 4


def test_backtest_prints_folds_and_mean(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv")
    result = tmp_path / "bt.json"
    code, out, err = run(capsys, "backtest", str(data), "--target", "sales", "--folds", "2",
                         "--test", "6", "--epochs", "1", "--output", str(result), *TINY)  # fmt: skip
    assert code == 0, err
    assert "fold 1/2" in out and "fold 2/2" in out and "mean over 2 folds of 6 rows" in out
    saved = json.loads(result.read_text())
    assert len(saved["folds"]) == 2 and "model" in saved["mean"]


BAD_TRAIN = [
    (lambda d: [str(d / "absent.csv")], "no such file"),
    (lambda d: [str(d / "empty.csv")], "is empty"),
    (lambda d: [str(d / "good.csv"), "--target", "nope"], "no column 'nope'"),
    (lambda d: [str(d / "text.csv"), "--target", "sales"], "not numeric: line 6"),
    (lambda d: [str(d / "short.csv"), "--target", "sales"], "series too short: 12 rows"),
    (lambda d: [str(d / "nan.csv"), "--target", "sales"], r"1 missing value\(s\).*--fill"),
    (lambda d: [str(d / "dates.csv"), "--target", "sales"], "date column 'month' does not parse"),
    (lambda d: [str(d / "good.csv"), "--target", "sales", "--quantiles", "0.5,x"], "--quantiles"),
    (lambda d: [str(d / "good.csv"), "--target", "sales", "--quantiles", "0.9,0.1"], "increasing"),
    (lambda d: [str(d / "neg.csv"), "--target", "sales", "--log"], "--log needs positive"),
    (lambda d: [str(d / "good.csv"), "--target", "sales", "--variant", "bogus"], "bogus"),
    (lambda d: ["--target", "sales"], "--target given without a DATA.csv"),
]


@pytest.mark.parametrize(("argv", "pattern"), BAD_TRAIN)
def test_bad_train_input_is_one_line_and_touches_nothing(trained, tmp_path, capsys, argv, pattern):
    _, out = trained
    write_csv(tmp_path / "good.csv")
    (tmp_path / "empty.csv").write_text("")
    write_csv(tmp_path / "text.csv", bad_row=4)
    write_csv(tmp_path / "short.csv", n=12)
    write_csv(tmp_path / "nan.csv", nan_at=30)
    (tmp_path / "neg.csv").write_text("sales\n" + "\n".join(str(i - 50) for i in range(100)))
    text = (tmp_path / "good.csv").read_text().replace("2001-03", "2001-13")
    (tmp_path / "dates.csv").write_text(text)
    before = snapshot(out)
    code, _, err = run(capsys, "train", *argv(tmp_path), "--out", str(out), "--force", *TINY)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lstmlens: error: ") and "Traceback" not in err
    assert re.search(pattern, err), err
    assert snapshot(out) == before


def test_existing_run_needs_force(trained, capsys):
    data, out = trained
    before = snapshot(out)
    code, _, err = run(capsys, "train", str(data), "--target", "sales", "--out", str(out), *TINY)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (lambda r: (r / "model.safetensors").unlink(), "model.safetensors: file not found"),
        (lambda r: (r / "model.safetensors").write_bytes(b"garbage"), "not a readable safetensors"),
        (lambda r: (r / "config.json").write_text("{oops"), "config.json: not valid JSON"),
        (lambda r: (r / "config.json").unlink(), "config.json"),
    ],
)
def test_predict_with_a_broken_run(trained, tmp_path, capsys, damage, pattern):
    _, out = trained
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    damage(broken)
    code, text, err = run(capsys, "predict", str(broken), "--steps", "2")
    assert code == 2 and text == ""
    assert err.count("\n") == 1 and err.startswith("lstmlens: error: ") and pattern in err, err


def test_predict_without_a_run(tmp_path, capsys):
    code, _, err = run(capsys, "predict", str(tmp_path / "absent"))
    assert code == 2 and "no such run folder" in err and err.count("\n") == 1


@pytest.mark.slow
def test_default_run_uses_co2_and_fills_its_gaps(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--out", str(tmp_path / "co2"), "--epochs", "1",
                         "--hidden", "4", "--quiet")  # fmt: skip
    assert code == 0, err
    assert "statsmodels co2" in out and "filled 59 missing values" in out
    metrics = json.loads((tmp_path / "co2" / "metrics.json").read_text())
    assert metrics["test"]["rows"] == 1 and metrics["test"]["season"] == 52  # the last H rows
    assert metrics["baselines"]["seasonal_naive"]["mae"] == pytest.approx(1.700, abs=1e-3)


def test_ctrl_c_saves_a_loadable_model_and_resume_finishes(tmp_path, capsys, monkeypatch):
    from lstmlens.tasks.forecast_model import ForecastTask

    data = write_csv(tmp_path / "d.csv")
    original = ForecastTask.train_batches

    def interrupt_in_epoch_3(self, epoch, generator):
        if epoch == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises inside the trainer
        return original(self, epoch, generator)

    monkeypatch.setattr(ForecastTask, "train_batches", interrupt_in_epoch_3)
    out = tmp_path / "run"
    args = ["train", str(data), "--target", "sales", "--out", str(out), "--epochs", "4", *TINY]
    code, text, _ = run(capsys, *args)
    assert code == 130 and "interrupted: the model of epoch 2 is saved" in text
    assert not (out / "metrics.json").exists()
    code, text, err = run(capsys, "predict", str(out))
    assert code == 0 and len(text.splitlines()) == 4, err
    monkeypatch.setattr(ForecastTask, "train_batches", original)
    code, text, err = run(capsys, *args, "--resume")
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["training"]["epochs_run"] == 4


def test_no_fallback_keeps_the_trained_correction(tmp_path, capsys):
    data = write_csv(tmp_path / "sales.csv")
    config = {}
    for flag, name in (([], "on"), (["--no-fallback"], "off")):
        out = tmp_path / name
        argv = ["train", str(data), "--target", "sales", "--out", str(out), "--epochs", "2",
                "--members", "1", *flag, *TINY]  # fmt: skip
        assert run(capsys, *argv)[0] == 0
        config[name] = json.loads((out / "config.json").read_text())["forecast"]
        heads = load_file(out / "model.safetensors")
        config[name]["head_moved"] = bool(heads["head.weight"].abs().sum() > 0)
    assert config["on"]["fallback"] is True and not config["on"]["head_moved"]  # 84 rows: fell back
    assert config["off"]["fallback"] is False and config["off"]["head_moved"]
