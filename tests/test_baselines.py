"""Baselines and metrics on hand-made series; ETS/ARIMA against statsmodels' own forecasts."""

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lstmlens.tasks.baselines import (
    arima,
    detect_season,
    drift,
    ets,
    naive,
    run_baselines,
    seasonal_naive,
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
