"""The forecast evaluation protocol (DESIGN section 6), conformal intervals and the anchored model."""

import numpy as np
import pandas as pd
import pytest

from lstmlens.data.series import Series
from lstmlens.tasks.baselines import seasonal_naive
from lstmlens.tasks.forecast import ForecastConfig, Forecaster
from lstmlens.tasks.forecast_conformal import calibrate, widen
from lstmlens.tasks.forecast_eval import evaluate
from lstmlens.tasks.metrics import coverage, mae, pinball
from lstmlens.train import TrainConfig

QUICK = {"hidden_size": 6, "members": 1}


def seasonal_series(n: int = 96, noise: float = 0.1, seed: int = 0) -> Series:
    """Monthly: level 20, trend 0.1 a month, a season of amplitude 3, Gaussian noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 20 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + noise * rng.normal(size=n)
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    return Series(values=y, covariates=np.zeros((n, 0)), name="y", index=index, freq="MS")


@pytest.mark.parametrize(("k", "test_size"), [(1, None), (3, None), (1, 7)])
def test_the_last_k_horizons_are_scored_and_validation_ends_right_before(k, test_size):
    series = seasonal_series()
    h, n = 3, len(series)
    fc = Forecaster(ForecastConfig(horizon=h, test_origins=k, test_size=test_size, **QUICK))
    split = fc.split(series)
    rows = test_size or k * h
    assert split.n == n and split.val_end == n - rows  # the test part: the last k x H rows
    assert split.train_end == split.val_end - split.val_size  # validation right before it
    fc.fit(series, TrainConfig(epochs=1), split)
    ev = evaluate(fc, series, split, baselines=("naive", "seasonal_naive"))
    np.testing.assert_array_equal(ev.origins, np.arange(n - rows, n, h))  # stepping by H
    known = np.isfinite(ev.actual)
    np.testing.assert_array_equal(ev.actual[known], series.values[n - rows :])  # every row once
    assert known.sum() == rows == ev.metrics["test"]["rows"]
    naive = np.repeat(series.values[ev.origins - 1, None], h, axis=1)
    assert ev.metrics["baselines"]["naive"]["mae"] == pytest.approx(
        mae(ev.actual[known], naive[known])
    )
    assert ev.metrics["model"]["mae"] == pytest.approx(mae(ev.actual[known], ev.model.point[known]))


def test_default_test_part_is_exactly_the_last_horizon():
    split = Forecaster(ForecastConfig(horizon=12)).split(seasonal_series(120))
    assert (split.val_end, split.n) == (108, 120) and split.val_size == 12


def test_conformal_calibration_reaches_the_nominal_coverage():
    rng = np.random.default_rng(0)
    steps, levels = 6, (0.1, 0.5, 0.9)
    sd = np.sqrt(np.arange(1, steps + 1))  # errors grow like a random walk's

    def draw(n):
        y = rng.normal(size=(n, steps)) * sd
        q = np.stack([-0.3 * sd, 0 * sd, 0.3 * sd], axis=-1) * np.ones((n, 1, 1))  # too narrow
        return q, y

    q_val, y_val = draw(3000)
    y_val[::7, -2:] = np.nan  # unknown values are left out
    deltas = calibrate(q_val, y_val, levels)
    q_new, y_new = draw(3000)
    before = coverage(y_new, q_new[..., 0], q_new[..., -1])
    wide = widen(q_new, deltas)
    after = coverage(y_new, wide[..., 0], wide[..., -1])
    assert before < 0.3 and after == pytest.approx(0.8, abs=0.02)
    assert pinball(y_new, wide, levels) < pinball(y_new, q_new, levels)


@pytest.mark.slow
def test_anchored_model_beats_seasonal_naive_with_calibrated_intervals():
    series = seasonal_series(120, noise=0.3)
    fc = Forecaster(ForecastConfig(horizon=12, test_origins=2, hidden_size=8, members=2))
    split = fc.split(series)
    fc.fit(series, TrainConfig(epochs=30, lr=3e-3), split)
    assert fc.season == 12 and fc.config.window == 36 and fc.config.log
    assert fc.config.deseasonalise and fc.calibration
    ev = evaluate(fc, series, split, baselines=("seasonal_naive",))
    sn = seasonal_naive(series.values, ev.origins, 12, 12)
    assert ev.metrics["model"]["mae"] < mae(ev.actual, sn)  # SN misses a year of trend
    assert 0.5 <= ev.metrics["model"]["coverage"] <= 1.0
    assert ev.metrics["model"]["pinball"] > 0


def test_untrained_anchored_model_is_its_anchor():
    series = seasonal_series()
    fc = Forecaster(ForecastConfig(horizon=5, anchor="seasonal", quantiles=(), **QUICK))
    fc.fit(series, TrainConfig(epochs=1, lr=1e-12))  # the zero head barely moves
    origins = np.array([40, 60])
    np.testing.assert_allclose(
        fc.predict_at(series, origins).point,
        seasonal_naive(series.values, origins, 5, 12),
        rtol=1e-5,
    )


def test_save_load_identical_with_every_default(tmp_path):
    series = seasonal_series()
    fc = Forecaster(ForecastConfig(horizon=4, hidden_size=5, members=2))
    fc.fit(series, TrainConfig(epochs=2, lr=1e-2))
    fc.save(tmp_path)
    again, cfg = Forecaster.load(tmp_path)
    assert cfg["forecast"]["window"] == 36 and cfg["forecast"]["members"] == 2
    origins = np.array([30, 70, 96])
    p, q = fc.predict_at(series, origins, 9), again.predict_at(series, origins, 9)
    np.testing.assert_array_equal(p.point, q.point)
    np.testing.assert_array_equal(p.quantiles, q.quantiles)
    np.testing.assert_array_equal(again.indices, fc.indices)
    assert again.calibration == fc.calibration


def test_config_rejects_bad_protocol_values():
    for kw, field in [({"test_origins": 0}, "test_origins"), ({"anchor": "x"}, "anchor"),
                      ({"members": 0}, "members"), ({"horizon": 4, "test_size": 3}, "test_size")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"ForecastConfig: {field}"):
            ForecastConfig(**kw)
