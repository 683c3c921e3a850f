"""``lstmlens.Forecaster`` (issue 11 item 6): the README snippet runs; fit / predict / load
give the command line's forecasts; bad input names the class."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lstmlens
from lstmlens.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
OPTIONS = dict(window=8, hidden_size=4, epochs=2, members=1, baselines=("naive",))
CLI_OPTIONS = ["--window", "8", "--hidden", "4", "--epochs", "2", "--members", "1",
               "--baselines", "naive", "--no-lens", "--quiet"]  # fmt: skip


def monthly_csv(path: Path, n: int = 72) -> Path:
    t = np.arange(n)
    y = 200 + t + 20 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(3).normal(0, 2, n)
    month = pd.date_range("2015-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"month": month, "sales": np.round(y, 3)}).to_csv(path, index=False)
    return path


def cli_forecast(capsys, run: Path, *extra: str) -> pd.DataFrame:
    assert main(["forecast", "predict", str(run), *extra]) == 0
    return pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))


def test_readme_snippet_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    snippet = next(b for b in blocks if "lstmlens.Forecaster(" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102 (the project's own README)
    assert (tmp_path / "runs" / "sales-api" / "model.safetensors").is_file()


def test_load_predicts_what_the_cli_predicts(tmp_path, capsys):
    data = monthly_csv(tmp_path / "sales.csv")
    run = tmp_path / "run"
    argv = ["forecast", "train", str(data), "--target", "sales", "--horizon", "6"]
    assert main([*argv, *CLI_OPTIONS, "--out", str(run)]) == 0
    capsys.readouterr()
    cli = cli_forecast(capsys, run)
    api = lstmlens.Forecaster.load(run).predict()
    assert list(api.columns) == list(cli.columns) == ["date", "forecast", "q0.1", "q0.5", "q0.9"]
    assert list(api["date"].dt.strftime("%Y-%m-%d")) == list(cli["date"])
    np.testing.assert_allclose(api.iloc[:, 1:].to_numpy(), cli.iloc[:, 1:].to_numpy(), rtol=1e-5)

    # fitting through the API on the same file trains the same model
    fc = lstmlens.Forecaster(horizon=6, **OPTIONS).fit(data, target="sales")
    fitted = fc.predict()
    np.testing.assert_allclose(fitted.iloc[:, 1:].to_numpy(), cli.iloc[:, 1:].to_numpy(), rtol=1e-5)
    assert (
        fc.metrics["model"]["mae"] == json.loads((run / "metrics.json").read_text())["model"]["mae"]
    )
    # old behaviour without covariates: one input feature, no covariate of any kind
    assert fc.model.net.config.input_size == 1
    assert fc.metrics["covariates"] == {"past": [], "future": [], "calendar": [], "held": None}
    config = json.loads((run / "config.json").read_text())
    assert "future_covariates" not in config["data"] and "calendar" not in config["data"]

    # save -> load -> the same forecasts, and forecast predict reads the saved folder
    saved = fc.save(tmp_path / "saved")
    again = lstmlens.Forecaster.load(saved).predict(series=data)
    np.testing.assert_array_equal(again.iloc[:, 1:].to_numpy(), fitted.iloc[:, 1:].to_numpy())
    longer = cli_forecast(capsys, saved, "--data", str(data), "--steps", "9")
    np.testing.assert_allclose(longer["forecast"][:6], fitted["forecast"], rtol=1e-5)


def test_future_covariates_from_a_dataframe(tmp_path):
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=90, freq="D")
    promo = (rng.random(90) < 0.3).astype(float)
    df = pd.DataFrame(
        {"day": days, "sales": 10 + 5 * promo + rng.normal(0, 0.1, 90), "promo": promo}
    )
    # 2 epochs do not clear the fallback test; keep the net so the promo reaches the forecast
    fc = lstmlens.Forecaster(horizon=3, fallback=False, **OPTIONS)
    fc.fit(df, target="sales", date="day", future_covariates=["promo"])
    with pytest.raises(
        ValueError, match=r"^Forecaster.predict: the future covariates promo .* 3 rows"
    ):
        fc.predict()
    ahead = pd.DataFrame(
        {"day": pd.date_range("2024-03-31", periods=3, freq="D"), "promo": [1, 0, 1]}
    )
    first = fc.predict(future=ahead)
    assert list(first["date"]) == list(ahead["day"])
    assert first["forecast"][0] != fc.predict(future=ahead.assign(promo=[0, 0, 1]))["forecast"][0]
    with pytest.raises(ValueError, match="must follow the last target value"):
        fc.predict(future=ahead.assign(day=ahead["day"] + pd.Timedelta(days=1)))
    with pytest.raises(ValueError, match=r"promo are needed for 3 row\(s\) after the end"):
        fc.model.forecast(fc._series, 3, np.ones((2, 1)))  # the library refuses too
    assert fc.backtest(folds=2)["mean"]["model"]["mae"] > 0


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: lstmlens.Forecaster(horizon=3, wings=2), TypeError, "Forecaster: unknown option"),
        (lambda: lstmlens.Forecaster(horizon=0), ValueError, "Forecaster: .*horizon"),
        (lambda: lstmlens.Forecaster(horizon=3, epochs=0), ValueError, "Forecaster: .*epochs"),
        (lambda: lstmlens.Forecaster(3).fit(42), TypeError, "Forecaster.fit: data must be"),
        (lambda: lstmlens.Forecaster(3).predict(), ValueError, "Forecaster.predict: not fitted"),
        (
            lambda: lstmlens.Forecaster(3).fit(pd.DataFrame({"y": [1.0] * 40}), target="x"),
            ValueError,
            "Forecaster.fit: no column 'x'",
        ),
        (
            lambda: lstmlens.Forecaster(3).fit(pd.DataFrame({"y": [1.0] * 40}), covariates="y"),
            TypeError,
            "Forecaster.fit: covariates must be a list",
        ),
    ],
)
def test_bad_input_names_the_class(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_load_refuses_what_is_not_a_forecast_run(tmp_path):
    with pytest.raises(ValueError, match="^Forecaster.load: "):
        lstmlens.Forecaster.load(tmp_path)


def test_the_api_trains_as_forecast_train_does():
    from lstmlens.cli.forecast import TRAIN_DEFAULTS as CLI
    from lstmlens.tasks.forecast_run import TRAIN_DEFAULTS

    fc = lstmlens.Forecaster(horizon=3)
    assert (fc.train.epochs, fc.train.lr, fc.train.max_minutes) == (
        CLI["epochs"],
        CLI["lr"],
        CLI["max_minutes"],
    )
    assert fc.train == TRAIN_DEFAULTS and fc.config.hidden_size == CLI["hidden"]
