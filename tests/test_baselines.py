"""Baselines and metrics on hand-made series; ETS/ARIMA against statsmodels' own forecasts."""

import time
import types
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lstmlens.tasks import baselines, statistical
from lstmlens.tasks.baselines import (
    OutOfTime,
    arima,
    detect_season,
    drift,
    ets,
    naive,
    parse_baselines,
    run_baselines,
    seasonal_naive,
    theta,
)
from lstmlens.tasks.metrics import all_metrics, mae, mase, rmse, smape

Y = np.array([3.0, 5.0, 4.0, 8.0, 6.0, 7.0, 10.0, 9.0])


def test_naive_seasonal_naive_and_drift_by_hand():
    origins = np.array([4, 6])
    np.testing.assert_array_equal(naive(Y, origins, 3), [[8, 8, 8], [7, 7, 7]])
    # season 2, origin 4 (knows 3 5 4 8): steps 1,2 -> y[2], y[3]; step 3 -> y[2] again
    np.testing.assert_array_equal(seasonal_naive(Y, origins, 3, season=2), [[4, 8, 4], [6, 7, 6]])
    # drift from origin 4: slope (8 - 3) / 3; from origin 6: slope (7 - 3) / 5
    np.testing.assert_allclose(
        drift(Y, origins, 2), [[8 + 5 / 3, 8 + 10 / 3], [7 + 4 / 5, 7 + 8 / 5]]
    )
    with pytest.raises(ValueError, match="full season"):
        seasonal_naive(Y, np.array([2]), 1, season=3)


def test_metrics_by_hand():
    y, f = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert mae(y, f) == pytest.approx(4 / 3)
    assert rmse(y, f) == pytest.approx(np.sqrt(10 / 3))
    assert smape(y, f) == pytest.approx(100 / 3 * (2 / 3 + 0 + 6 / 5))
    insample = np.array([1.0, 3.0, 2.0, 6.0])  # |diffs| lag 1: 2, 1, 4 -> 7/3; lag 2: 1, 3 -> 2
    assert mase(y, f, insample) == pytest.approx((4 / 3) / (7 / 3))
    assert mase(y, f, insample, season=2) == pytest.approx((4 / 3) / 2)
    assert smape([0.0], [0.0]) == 0.0
    assert np.isnan(mase(y, f, np.ones(5)))
    assert set(all_metrics(y, f, insample)) == {"mae", "rmse", "smape", "mase"}
    with pytest.raises(ValueError, match="same non-empty size"):
        mae(y, f[:2])


def test_detect_season():
    t = np.arange(240)
    rng = np.random.default_rng(0)
    assert detect_season(np.sin(2 * np.pi * t / 7) + 0.02 * t + 0.2 * rng.normal(size=240)) == 7
    assert detect_season(10 + np.cos(2 * np.pi * t / 12) + 0.1 * rng.normal(size=240)) == 12
    assert detect_season(rng.normal(size=240).cumsum()) is None
    assert detect_season(np.ones(50)) is None


def seasonal_series(n: int = 96, m: int = 12, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / m) + rng.normal(0, 0.5, n)


def test_ets_matches_statsmodels_at_the_fit_origin():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = seasonal_series()  # range ratio < 1.5: only the additive season is tried
    fit_end, h = 84, 6
    ours, desc = ets(y, fit_end, np.array([fit_end]), h, season=12)
    assert desc == "ETS(A,Ad,A) m=12"
    with warnings.catch_warnings(), threadpool_limits(1, "blas"):  # tiny matrices: 1 thread
        warnings.simplefilter("ignore")
        ref = ExponentialSmoothing(
            y[:fit_end],
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=12,
            initialization_method="estimated",
        ).fit()
    np.testing.assert_allclose(ours[0], ref.forecast(h), rtol=1e-8)


def test_arima_matches_statsmodels_at_the_fit_origin():
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    rng = np.random.default_rng(3)
    y = 100 + np.cumsum(0.2 + rng.normal(0, 1, 120))  # random walk with drift, no season
    fit_end, h = 100, 5
    ours, desc = arima(y, fit_end, np.array([fit_end]), h, season=None)
    assert desc == "ARIMA(1,1,1)+drift"
    with warnings.catch_warnings(), threadpool_limits(1, "blas"):  # tiny matrices: 1 thread
        warnings.simplefilter("ignore")
        ref = SARIMAX(np.diff(y[:fit_end]), order=(1, 0, 1), trend="c")
        ref = ref.fit(disp=False, cov_type="none")
    expected = y[fit_end - 1] + np.cumsum(ref.forecast(h))  # integrate the differences
    np.testing.assert_allclose(ours[0], expected, rtol=1e-5)


def test_seasonal_arima_integrates_both_differences():
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = seasonal_series(n=120, m=4, seed=2)
    fit_end, h, m = 100, 6, 4
    ours, desc = arima(y, fit_end, np.array([fit_end]), h, season=m)
    assert desc == "ARIMA(1,1,1)(0,1,1)_4"
    w = y[m + 1 :] - y[m:-1] - y[1:-m] + y[: -m - 1]  # (1-B)(1-B^4) y
    with warnings.catch_warnings(), threadpool_limits(1, "blas"):  # tiny matrices: 1 thread
        warnings.simplefilter("ignore")
        ref = SARIMAX(w[: fit_end - m - 1], order=(1, 0, 1), seasonal_order=(0, 0, 1, m))
        w_hat = ref.fit(disp=False, cov_type="none").forecast(h)
    path = list(y[:fit_end])
    for step in range(h):  # y_t = w_t + y_{t-1} + y_{t-m} - y_{t-m-1}
        path.append(w_hat[step] + path[-1] + path[-m] - path[-m - 1])
    np.testing.assert_allclose(ours[0], path[fit_end:], rtol=1e-5)


def test_no_baseline_looks_past_its_origin():
    y = seasonal_series()
    fit_end, h = 72, 3
    origins = np.arange(fit_end, 90, 3)
    before, _, skipped = run_baselines(y, fit_end, origins, h, season=12)
    assert skipped == {}
    changed = y.copy()
    changed[85:] += 40.0  # only targets of the last origins (84, 87) may notice
    after, _, _ = run_baselines(changed, fit_end, origins, h, season=12)
    for name in before:
        np.testing.assert_allclose(after[name][:-2], before[name][:-2], err_msg=name)
        if name != "seasonal_naive":  # which reads a full season (12) back: rows < 85
            assert not np.allclose(after[name][-1], before[name][-1]), name


def test_run_baselines_skips_what_the_series_does_not_allow():
    forecasts, desc, skipped = run_baselines(
        Y, 6, np.array([6]), 2, season=None, names=("naive", "seasonal_naive", "arima")
    )
    assert set(forecasts) == {"naive"} and desc["naive"] == "last value"
    assert "no seasonal period" in skipped["seasonal_naive"]
    assert "needs at least 21 values" in skipped["arima"]
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baselines(Y, 6, np.array([6]), 1, None, names=("prophet",))


def _statsmodels_theta(train: np.ndarray, h: int, period: int | None) -> np.ndarray:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    with warnings.catch_warnings(), threadpool_limits(1, "blas"):
        warnings.simplefilter("ignore")
        model = ThetaModel(train, period=period, deseasonalize=period is not None)
        return np.asarray(model.fit().forecast(h))


@pytest.mark.parametrize(
    ("y", "season", "kind"),
    [
        (seasonal_series(), 12, "multiplicative season m=12"),  # positive: statsmodels' "mul"
        (seasonal_series() - 60.0, 12, "additive season m=12"),  # crosses zero: "add"
        (np.cumsum(np.random.default_rng(5).normal(0.3, 1, 96)), None, "no season"),
    ],
)
def test_theta_matches_statsmodels_at_the_fit_origin(y, season, kind):
    fit_end, h = 84, 7
    ours, desc = theta(y, fit_end, np.array([fit_end]), h, season)
    assert desc.startswith("Theta(alpha=") and kind in desc
    np.testing.assert_allclose(ours[0], _statsmodels_theta(y[:fit_end], h, season), rtol=1e-9)


def test_theta_at_later_origins_equals_a_refit_with_the_same_parameters():
    """Running the level forward from fit_end matches statsmodels' forecast on y[:o] with
    alpha, b0 and the season fixed (here: no season, so only alpha and b0 are fixed)."""
    rng = np.random.default_rng(9)
    y = 20 + np.cumsum(rng.normal(0.2, 1, 90))
    fit_end, h, o = 70, 4, 80
    ours, _ = theta(y, fit_end, np.array([fit_end, o]), h, None)
    from statsmodels.tsa.forecasting.theta import ThetaModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ThetaModel(y[:fit_end], deseasonalize=False).fit()
    alpha, b0 = fit.params["alpha"], fit.params["b0"]
    level = y[0]
    for t in range(o):
        level = alpha * y[t] + (1 - alpha) * level
    steps = np.arange(h) + 1 / alpha - (1 - alpha) ** o / alpha
    np.testing.assert_allclose(ours[1], level + 0.5 * b0 * steps, rtol=1e-10)


def test_a_season_too_long_for_ets_and_arima_is_declined_with_a_note():
    t = np.arange(800)
    y = 10 + np.sin(2 * np.pi * t / 60) + 0.01 * t
    lines: list[str] = []
    forecasts, _, skipped = run_baselines(y, 700, np.array([700]), 5, season=60,
                                          progress=lines.append)  # fmt: skip
    assert set(skipped) == {"ets", "arima"}
    for name in ("ets", "arima"):
        assert skipped[name].startswith("season 60 is too long to fit (limit 52 steps)")
        assert "\n" not in skipped[name]
    assert {"naive", "seasonal_naive", "drift", "theta"} == set(forecasts)
    assert lines[0] == "baseline theta: fitting on 700 rows" and lines[1].startswith(
        "baseline theta: Theta("
    )


def test_long_series_are_fitted_on_a_recent_window():
    y = seasonal_series(n=400, m=4, seed=1)
    origins = np.array([360, 364])
    full, desc, _ = run_baselines(y, 360, origins, 4, 4, names=("ets", "theta"))
    windowed, wdesc, _ = run_baselines(
        y, 360, origins, 4, 4, names=("ets", "theta"), fit_window=100
    )
    for name in ("ets", "theta"):
        assert wdesc[name].endswith(", fitted on the last 100 rows")
        assert "fitted on the last" not in desc[name]
        alone = {"ets": ets, "theta": theta}[name](y[260:], 100, origins - 260, 4, 4)[0]
        np.testing.assert_allclose(windowed[name], alone, err_msg=name)
        assert not np.allclose(windowed[name], full[name])


def test_too_few_seasons_fit_without_the_season_and_say_so():
    y = seasonal_series(n=60, m=12)
    _, desc = ets(y, 25, np.array([25]), 3, season=12)
    assert desc == "ETS(A,Ad,N) (season 12 left out: 25 rows < 2 seasons + 2)"
    _, desc = arima(y, 40, np.array([40]), 3, season=12)
    assert desc == "ARIMA(1,1,1)+drift (season 12 left out: 40 rows < 3 seasons + 10)"


def test_time_budget_declines_the_fits_that_have_not_started():
    y = seasonal_series()
    forecasts, _, skipped = run_baselines(y, 84, np.array([84]), 3, 12, budget_s=-1.0)
    assert set(forecasts) == {"naive", "seasonal_naive", "drift"}
    assert set(skipped) == {"ets", "theta", "arima"}
    assert all("time budget" in why for why in skipped.values())


def test_a_deadline_stops_the_ets_and_arima_optimisers():
    y = seasonal_series()
    for fn in (ets, arima):
        with pytest.raises(OutOfTime):
            fn(y, 84, np.array([84]), 3, 12, deadline=time.monotonic() - 1.0)


def test_a_fit_running_past_the_budget_stops_and_the_next_is_declined(monkeypatch):
    ticks = iter(range(0, 100_000, 10))  # every reading of the clock is 10 s later
    clock = types.SimpleNamespace(monotonic=lambda: float(next(ticks)))
    monkeypatch.setattr(baselines, "time", clock)
    monkeypatch.setattr(statistical, "time", clock)
    forecasts, _, skipped = run_baselines(seasonal_series(), 84, np.array([84]), 3, 12,
                                          names=("naive", "ets", "theta"), budget_s=25)  # fmt: skip
    assert set(forecasts) == {"naive"}
    assert skipped == {
        "ets": "stopped: the baselines' time budget (25 s) ran out",  # starts at 20 s
        "theta": "the baselines' time budget (25 s) was spent before it could start",
    }


def test_parse_baselines():
    assert parse_baselines("none") == ()
    assert parse_baselines("theta, naive,theta") == ("theta", "naive")
    with pytest.raises(ValueError, match="unknown baseline 'prophet'; choose from naive, "):
        parse_baselines("naive,prophet")
    with pytest.raises(ValueError, match="unknown baseline"):
        parse_baselines(",")
