"""The statistical anchors (ETS, Theta, ETS + Theta, Theta + ARIMA) and the fallback to them
when the net does not help."""

import numpy as np
import pandas as pd
import pytest
import torch

from lstmlens.data.series import Series
from lstmlens.tasks.forecast import ForecastConfig, Forecaster
from lstmlens.tasks.forecast_model import ForecastNet, NetConfig, correction_ratio
from lstmlens.tasks.forecast_norm import statistical_anchor
from lstmlens.tasks.statistical import arima, arima_first_origin, ets
from lstmlens.tasks.theta import theta
from lstmlens.train import TrainConfig


def seasonal_series(n: int = 96, seed: int = 0) -> Series:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 20 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + 0.3 * rng.normal(size=n)
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    return Series(values=y, covariates=np.zeros((n, 0)), name="y", index=index, freq="MS")


def test_ets_theta_anchor_is_the_mean_of_both_fitted_once():
    u = seasonal_series().values
    origins = np.array([50, 70, 96])
    both = statistical_anchor(u, 60, origins, 5, 12, "ets_theta")
    expected = 0.5 * (ets(u, 60, origins, 5, 12)[0] + theta(u, 60, origins, 5, 12)[0])
    np.testing.assert_allclose(both, expected, rtol=1e-12)
    np.testing.assert_allclose(
        statistical_anchor(u, 60, origins, 5, 12, "ets"), ets(u, 60, origins, 5, 12)[0]
    )
    with pytest.raises(ValueError, match="statistical_anchor: anchor must be one of"):
        statistical_anchor(u, 60, origins, 5, 12, "level")


def test_theta_arima_anchor_is_their_mean_and_theta_where_arima_cannot_start():
    u = seasonal_series().values
    first = arima_first_origin(60, 12)
    assert first == 15  # (1-B)(1-B^12) needs 13 values, and one more to filter from
    origins = np.array([first - 1, first, 70, 96])
    both = statistical_anchor(u, 60, origins, 5, 12, "theta_arima")
    th = theta(u, 60, origins, 5, 12)[0]
    ar = arima(u, 60, origins[1:], 5, 12)[0]
    np.testing.assert_allclose(both[1:], 0.5 * (th[1:] + ar), rtol=1e-12)
    np.testing.assert_allclose(both[0], th[0], rtol=1e-12)  # ARIMA cannot forecast from there
    assert arima_first_origin(20, 12) == 3  # too short for the season: (1-B) only


def test_correction_ratio_by_hand():
    net = ForecastNet(NetConfig(input_size=1, hidden_size=3, out_steps=2, zero_head=True))
    x = torch.zeros(2, 4, 1)
    y = torch.tensor([[1.0, -3.0], [2.0, float("nan")]])  # the anchor's errors: mean |y| = 2
    assert correction_ratio(net, x, y, ()) == pytest.approx(1.0)  # a zero head is the anchor
    with torch.no_grad():
        net.head.bias.copy_(torch.tensor([1.0, 1.0]))  # now errors 0, 4, 1: mean 5/3
    assert correction_ratio(net, x, y, ()) == pytest.approx((5 / 3) / 2)


def test_untrained_net_falls_back_to_its_anchor_exactly():
    series = seasonal_series()
    config = ForecastConfig(horizon=6, hidden_size=4, members=2)
    fc = Forecaster(config)
    fc.fit(series, TrainConfig(epochs=1, lr=1e-9))  # barely moves: no clear gain
    assert fc.config.anchor == "theta_arima"  # the default
    assert fc.correction_ratio == pytest.approx(1.0, abs=1e-3)
    heads = [fc.net.head, *(member[1] for member in fc.net.others)]
    assert all(not h.weight.detach().any() and not h.bias.detach().any() for h in heads)
    split = fc.split(series)
    origins = np.array([split.val_end])
    # fitted in the data's units, as the baselines are: the forecast is their mean exactly
    y = series.values
    expected = 0.5 * (
        theta(y, split.val_end, origins, 6, 12)[0] + arima(y, split.val_end, origins, 6, 12)[0]
    )
    point = fc.predict_at(series, origins).point
    np.testing.assert_allclose(point, expected, rtol=1e-5)
    off = Forecaster(ForecastConfig(horizon=6, hidden_size=4, members=2, fallback=False))
    off.fit(series, TrainConfig(epochs=1, lr=1e-3))
    assert off.net.head.weight.detach().any()  # without fallback the trained head stays


def test_log_model_anchor_is_fitted_in_data_units():
    series = seasonal_series()
    fc = Forecaster(ForecastConfig(horizon=6, hidden_size=4, members=1, anchor="ets_theta"))
    fc.fit(series, TrainConfig(epochs=1, lr=1e-9))
    assert fc.config.log and fc.config.anchor == "ets_theta"  # y > 0: a log model
    split = fc.split(series)
    origins = np.array([split.val_end])
    y = series.values
    expected = statistical_anchor(y, split.val_end, origins, 6, 12, "ets_theta")
    np.testing.assert_allclose(fc.predict_at(series, origins).point, expected, rtol=1e-5)


def test_anchor_falls_back_in_order_when_a_fit_fails(monkeypatch):
    import lstmlens.tasks.statistical as statistical

    def out_of_time(*args, **kwargs):
        raise statistical.OutOfTime("out of time")

    monkeypatch.setattr(statistical, "arima", out_of_time)
    fc = Forecaster(ForecastConfig(horizon=6, hidden_size=4, members=1))
    fc.fit(seasonal_series(), TrainConfig(epochs=1, lr=1e-9))
    assert fc.config.anchor == "ets_theta"  # ANCHOR_FALLBACK["theta_arima"]
    monkeypatch.setattr(statistical, "ets", out_of_time)
    fc = Forecaster(ForecastConfig(horizon=6, hidden_size=4, members=1))
    fc.fit(seasonal_series(), TrainConfig(epochs=1, lr=1e-9))
    assert fc.config.anchor == "theta"


def test_config_takes_the_statistical_anchors_only_by_name():
    for name in ("ets", "theta", "ets_theta", "theta_arima"):
        assert ForecastConfig(anchor=name).anchor == name
    for bad in ("none", "arima", "ets_arima"):
        with pytest.raises(ValueError, match="ForecastConfig: anchor"):
            ForecastConfig(anchor=bad)


def sine_steps(n: int, period: int) -> Series:
    """A noisy sine of ``period`` over ``n`` integer steps (no dates)."""
    t = np.arange(n)
    y = 10 + np.sin(2 * np.pi * t / period) + 0.1 * np.random.default_rng(0).normal(size=n)
    return Series(values=y, covariates=np.zeros((n, 0)), name="y", index=pd.RangeIndex(n))


def test_default_anchor_declines_a_season_too_long_to_fit_quickly():
    series = sine_steps(300, 60)
    fc = Forecaster(ForecastConfig(horizon=3, season=60, hidden_size=4, members=1))
    fc.fit(series, TrainConfig(epochs=1))
    assert fc.config.anchor == "level"  # ANCHOR_MAX_SEASON = 52
    asked = Forecaster(ForecastConfig(horizon=3, season=4, anchor="ets", hidden_size=4, members=1))
    asked.fit(series, TrainConfig(epochs=1))
    assert asked.config.anchor == "ets"


def test_a_training_part_too_short_for_arima_and_ets_gets_theta():
    n = 28  # 12 training rows: ETS and ARIMA need 20 or more, Theta fits
    t = np.arange(n)
    y = 100 + 2 * t + 5 * np.sin(2 * np.pi * t / 4) + np.random.default_rng(0).normal(size=n)
    index = pd.date_range("2000-01-01", periods=n, freq="QS")
    series = Series(values=y, covariates=np.zeros((n, 0)), name="y", index=index, freq="QS")
    fc = Forecaster(ForecastConfig(horizon=8, hidden_size=4, members=1))
    fc.fit(series, TrainConfig(epochs=1))
    assert fc.split(series).train_end == 12 and fc.config.anchor == "theta"


def test_default_anchor_leaves_arima_out_of_long_seasons():
    series = sine_steps(200, 30)
    fc = Forecaster(ForecastConfig(horizon=3, season=30, hidden_size=4, members=1))
    fc.fit(series, TrainConfig(epochs=1))
    assert fc.config.anchor == "ets_theta"  # ANCHOR_ARIMA_MAX_SEASON = 24
