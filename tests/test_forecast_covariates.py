"""Known-future covariates and calendar features (issue 11 item 5): the features, the
future rows ``forecast predict`` reads, the refusals, and a planted promotion the model
must use."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lstmlens
from lstmlens.cli.main import main
from lstmlens.data.calendar import calendar_cycles, calendar_features
from lstmlens.data.covariates import Covariates, future_values, split_future_rows
from lstmlens.data.series import from_pandas, infer_freq

TINY = ["--window", "8", "--horizon", "4", "--hidden", "4", "--epochs", "2", "--members", "1",
        "--baselines", "naive", "--no-lens", "--quiet"]  # fmt: skip


def cycles_of(freq: str, periods: int = 30) -> tuple[tuple[str, ...], np.ndarray, pd.DatetimeIndex]:
    index = pd.date_range("2021-01-01", periods=periods, freq=freq)
    names, values = calendar_features(index, calendar_cycles(infer_freq(index)))
    return names, values, index


@pytest.mark.parametrize(
    ("freq", "cycles"),
    [
        ("MS", ("month_of_year",)),
        ("QS", ("quarter_of_year",)),
        ("W-SUN", ("week_of_year",)),
        ("D", ("day_of_week", "day_of_year")),
        ("h", ("hour_of_day", "day_of_week")),
    ],
)
def test_calendar_features_follow_the_frequency(freq, cycles):
    names, values, _ = cycles_of(freq)
    assert names == tuple(f"calendar:{c}_{f}" for c in cycles for f in ("sin", "cos"))
    assert values.shape == (30, 2 * len(cycles))
    np.testing.assert_allclose(values[:, 0] ** 2 + values[:, 1] ** 2, 1.0)  # on the circle


def daily_of(when: pd.Timestamp) -> np.ndarray:
    angle = 2 * np.pi * when.day_of_week / 7
    return np.array([np.sin(angle), np.cos(angle)])


def test_calendar_values_are_the_position_in_the_cycle():
    _, monthly, _ = cycles_of("MS", 24)
    np.testing.assert_allclose(monthly[0], [0.0, 1.0], atol=1e-12)  # January
    np.testing.assert_allclose(monthly[3], [1.0, 0.0], atol=1e-12)  # April: a quarter turn
    np.testing.assert_allclose(monthly[12], monthly[0])  # a year later: the same
    _, hourly, index = cycles_of("h", 48)
    assert index[6].hour == 6
    np.testing.assert_allclose(hourly[6, :2], [1.0, 0.0], atol=1e-12)  # 06:00: a quarter day
    np.testing.assert_allclose(hourly[24, :2], hourly[0, :2])  # the hour, a day later
    np.testing.assert_allclose(hourly[24, 2:], daily_of(index[24]))
    _, daily, index = cycles_of("D", 14)
    monday = [i for i, d in enumerate(index) if d.day_of_week == 0]
    np.testing.assert_allclose(daily[monday[0], :2], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(daily[monday[1], :2], daily[monday[0], :2])


@pytest.mark.parametrize(
    ("freq", "message"), [(None, "needs a date column"), ("YS", "no calendar cycle")]
)
def test_calendar_refused_without_a_cycle(freq, message):
    with pytest.raises(ValueError, match=message):
        calendar_cycles(freq)


def promo_frame(n: int = 120, future: int = 0, seed: int = 0) -> pd.DataFrame:
    """A flat series lifted by 20 on promotion days (a quarter of them, at random)."""
    rng = np.random.default_rng(seed)
    promo = (rng.random(n + future) < 0.25).astype(float)
    y = 50 + 20 * promo + rng.normal(0, 1, n + future)
    y[n:] = np.nan  # the future rows: promotions known, sales not
    dates = pd.date_range("2022-01-03", periods=n + future, freq="D")
    return pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "sales": y, "promo": promo})


def test_future_rows_are_split_and_checked():
    frame = promo_frame(60, future=4)
    cov = Covariates(future=("promo",))
    history, future = split_future_rows(frame, None, None, cov)  # target: the only other column
    assert (len(history), len(future)) == (60, 4)
    series = from_pandas(history, "sales", "day", cov.columns)
    got = future_values(series, future, cov, 4)
    np.testing.assert_array_equal(got[:, 0], frame["promo"].to_numpy()[60:])
    with pytest.raises(ValueError, match=r"promo are needed for the 8 rows .* has 4"):
        future_values(series, future, cov, 8)
    blank = future.copy()
    blank.loc[blank.index[2], "promo"] = np.nan
    with pytest.raises(ValueError, match="'promo' is blank or not a number"):
        future_values(series, blank, cov, 4)
    shifted = future.copy()
    shifted["day"] = pd.date_range("2023-01-01", periods=4, freq="D").strftime("%Y-%m-%d")
    with pytest.raises(ValueError, match="must follow the last target value"):
        future_values(series, shifted, cov, 4)


def test_past_and_future_at_once_refused():
    with pytest.raises(ValueError, match="both past"):
        Covariates(past=("promo",), future=("promo",))


def train(capsys, data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["forecast", "train", str(data), "--target", "sales", *TINY, "--out", str(out),
                 *extra])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_needs_the_future_rows(tmp_path, capsys):
    history = tmp_path / "sales.csv"
    promo_frame(80).to_csv(history, index=False)
    run = tmp_path / "run"
    code, out, _ = train(capsys, history, run, "--future-covariates", "promo", "--calendar")
    assert code == 0
    assert "covariates: known-future promo; calendar (sin, cos) day_of_week, day_of_year" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["covariates"]["past"] == []
    assert metrics["covariates"]["future"] == ["promo"]
    assert metrics["covariates"]["calendar"][:2] == [
        "calendar:day_of_week_sin",
        "calendar:day_of_week_cos",
    ]
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["future_covariates"] == ["promo"] and config["data"]["calendar"]
    assert config["net"]["input_size"] == 1 + 5 + 4 * 5  # y, 5 covariates, 4 steps x 5 known

    written = tmp_path / "next.csv"
    code = main(["forecast", "predict", str(run), "--output", str(written)])
    err = capsys.readouterr().err
    assert code == 2 and not written.exists()
    assert err.count("\n") == 1
    assert "the future covariates promo are needed for the 4 rows after the last" in err

    ahead = tmp_path / "ahead.csv"
    promo_frame(80, future=4).to_csv(ahead, index=False)
    assert (
        main(["forecast", "predict", str(run), "--data", str(ahead), "--output", str(written)]) == 0
    )
    table = pd.read_csv(written)
    assert list(table["date"]) == list(promo_frame(80, future=4)["day"][80:])
    loaded = lstmlens.Forecaster.load(run).predict(series=ahead)  # save -> load -> the same
    np.testing.assert_allclose(
        loaded.iloc[:, 1:].to_numpy(), table.iloc[:, 1:].to_numpy(), rtol=1e-5
    )
    code = main(["forecast", "predict", str(run), "--data", str(ahead), "--steps", "6"])
    assert code == 2 and "needed for the 8 rows" in capsys.readouterr().err  # two blocks of 4

    # an edited run folder is refused: the kinds must agree with the features
    known = config["future_covariates"]  # promo and the 4 calendar columns
    for future, message in ((["nowhere", *known[1:]], "must be among the covariates"),
                            (["promo"], "entries for")):  # fmt: skip
        config["future_covariates"] = future
        (run / "config.json").write_text(json.dumps(config))
        with pytest.raises(ValueError, match=message):
            lstmlens.Forecaster.load(run)


def test_resume_with_other_covariates_refused(tmp_path, capsys):
    data = tmp_path / "sales.csv"
    promo_frame(80).to_csv(data, index=False)
    run = tmp_path / "run"
    assert train(capsys, data, run, "--future-covariates", "promo")[0] == 0
    code, _, err = train(capsys, data, run, "--covariates", "promo", "--resume", "--epochs", "3")
    assert code == 2 and "covariates" in err and "future_covariates" in err


def test_past_only_covariates_held_is_announced(tmp_path, capsys):
    data = tmp_path / "sales.csv"
    promo_frame(80).to_csv(data, index=False)
    run = tmp_path / "run"
    code, out, _ = train(capsys, data, run, "--covariates", "promo", "--mode", "recursive")
    assert code == 0 and "covariates: past-only promo" in out
    assert "promo are held at their last known value" in out
    held = json.loads((run / "metrics.json").read_text())["covariates"]["held"]
    assert "held at their last known value" in held
    assert main(["forecast", "predict", str(run)]) == 0
    assert "held at their last known value" in capsys.readouterr().err


def test_calendar_without_dates_refused(tmp_path, capsys):
    data = tmp_path / "steps.csv"
    promo_frame(80).drop(columns="day").to_csv(data, index=False)
    out = tmp_path / "run"
    code, _, err = train(capsys, data, out, "--calendar")
    assert code == 2 and "--calendar needs a date column" in err and not out.exists()


@pytest.mark.slow
def test_a_planted_promotion_is_used():
    """Sales lift by 20 on promotion days; known in advance, the model forecasts the lift
    (MAE near the noise, 1), without it the model cannot (MAE near 20 x 0.25 x 0.75 x 2)."""
    frame = promo_frame(160)
    options = dict(window=8, hidden_size=8, epochs=60, lr=0.02, members=1, log=False,
                   baselines=("naive",), test_origins=5)  # fmt: skip
    known = lstmlens.Forecaster(horizon=4, **options)
    known.fit(frame, target="sales", date="day", future_covariates=["promo"])
    past = lstmlens.Forecaster(horizon=4, **options)
    past.fit(frame, target="sales", date="day", covariates=["promo"])
    with_mae, without_mae = known.metrics["model"]["mae"], past.metrics["model"]["mae"]
    assert with_mae < 0.5 * without_mae, (with_mae, without_mae)
    assert with_mae < 3.0


def test_many_series_refuse_known_future_covariates(tmp_path, capsys):
    data = tmp_path / "two.csv"
    promo_frame(80).to_csv(data, index=False)
    out = tmp_path / "run"
    code = main(["forecast", "train", str(data), "--target", "sales,promo", "--calendar",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 2 and "--calendar: one series only" in capsys.readouterr().err
    assert not out.exists()
