"""The forecasting model and task: shapes, loss, windows, scaling, modes, save/load, scoring."""

import numpy as np
import pandas as pd
import pytest
import torch

from lstmlens.data.series import Series
from lstmlens.data.windows import Split
from lstmlens.tasks.forecast import ForecastConfig, Forecaster
from lstmlens.tasks.forecast_eval import backtest, evaluate
from lstmlens.tasks.forecast_model import ForecastNet, NetConfig, pinball_loss
from lstmlens.tasks.metrics import mae, rmse
from lstmlens.train import TrainConfig

FAST = TrainConfig(epochs=2, lr=1e-2, seed=0)


def make_series(n: int = 120, covariate: bool = False, seed: int = 0) -> Series:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    y = 10 + 0.05 * t + np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=n)
    cov = np.cos(2 * np.pi * t / 12)[:, None] if covariate else np.zeros((n, 0))
    return Series(
        values=y,
        covariates=cov,
        name="y",
        covariate_names=("c",) if covariate else (),
        index=pd.date_range("2000-01-01", periods=n, freq="MS"),
        freq="MS",
    )


OLD = {"quantiles": (), "log": False, "anchor": "level", "deseasonalise": False, "members": 1}


def small(**kw) -> ForecastConfig:
    """A small model as issue 3 built it: no intervals, no log, anchored on the last value."""
    return ForecastConfig(**{"window": 12, "horizon": 3, "hidden_size": 6, **OLD, **kw})


def test_net_shapes_for_variants_and_layers():
    for variant, layers in [("vanilla", 1), ("cifg", 2), ("peephole", 1)]:
        net = ForecastNet(NetConfig(input_size=2, hidden_size=5, num_layers=layers,
                                    variant=variant, dropout=0.1, out_steps=4, n_outputs=3))  # fmt: skip
        assert net(torch.randn(7, 9, 2)).shape == (7, 4, 3)
    with pytest.raises(ValueError, match=r"expected input \(B, W, 2\)"):
        net(torch.randn(7, 9, 3))


def test_pinball_loss_by_hand():
    pred = torch.tensor([[[1.0, 2.0]]])  # one window, one step, levels 0.1 and 0.9
    target = torch.tensor([[3.0]])
    # errors 3-1=2 and 3-2=1 are positive: losses 0.1*2 and 0.9*1
    assert float(pinball_loss(pred, target, torch.tensor([0.1, 0.9]))) == pytest.approx(0.55)
    target = torch.tensor([[0.0]])  # errors -1, -2: losses 0.9*1 and 0.1*2
    assert float(pinball_loss(pred, target, torch.tensor([0.1, 0.9]))) == pytest.approx(0.55)


def test_quantiles_always_include_the_median():
    assert ForecastConfig(quantiles=(0.9, 0.1)[::-1]).quantiles == (0.1, 0.5, 0.9)
    assert ForecastConfig(quantiles=(0.25, 0.5)).quantiles == (0.25, 0.5)


def test_default_batch_is_64_windows():
    c = ForecastConfig()
    assert (c.batch_for(2000), c.batch_for(88), c.batch_for(10)) == (64, 64, 10)
    assert ForecastConfig(batch_size=5).batch_for(2000) == 5


def test_config_rejects_bad_values():
    bad = [
        ({"window": 0}, "window"),
        ({"mode": "both"}, "mode"),
        ({"quantiles": (0.9, 0.2)}, "quantiles"),
        ({"season": 1}, "season"),
        ({"batch_size": 0}, "batch_size"),
    ]
    for kw, field in bad:
        with pytest.raises(ValueError, match=f"ForecastConfig: {field}"):
            ForecastConfig(**kw)


def test_training_windows_are_relative_to_the_last_value():
    series = make_series(40)
    fc = Forecaster(small())
    fc.fit(series, TrainConfig(epochs=1), Split(train_end=24, val_end=32, n=40))
    u = fc._encode(series)  # the scaled target, fitted on rows < 24
    x, y = fc._training_set(u, np.array([12, 15]), stop=24)
    np.testing.assert_allclose(x[1, :, 0].double(), u[3:15, 0] - u[14, 0], atol=1e-6)
    np.testing.assert_allclose(y[1].double(), u[15:18, 0] - u[14, 0], atol=1e-6)
    z = (series.values[:24] - series.values[:24].mean()) / series.values[:24].std()
    np.testing.assert_allclose(u[:24, 0], z)


def test_scaler_and_weights_ignore_the_test_rows():
    series = make_series()
    split = Split(train_end=84, val_end=102, n=120)
    poisoned = Series(**{**series.__dict__, "values": series.values.copy()})
    poisoned.values[102:] = 1e6  # test rows
    a, b = Forecaster(small()), Forecaster(small())
    a.fit(series, FAST, split)
    b.fit(poisoned, FAST, split)
    np.testing.assert_array_equal(a.scaler.mean, b.scaler.mean)
    for (name, p), q in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    poisoned.values[84:102] = 1e6  # validation rows: still not in the scaler
    c = Forecaster(small())
    c.fit(poisoned, TrainConfig(epochs=1), split)
    np.testing.assert_array_equal(a.scaler.scale, c.scaler.scale)


def test_save_load_gives_identical_predictions(tmp_path):
    series = make_series(covariate=True)
    fc = Forecaster(small(quantiles=(0.1, 0.5, 0.9), log=True))
    fc.fit(series, FAST)
    fc.save(tmp_path, {"data": {"source": "test"}})
    again, cfg = Forecaster.load(tmp_path)
    assert cfg["data"] == {"source": "test"} and again.covariates == ("c",)
    origins = np.array([60, 90, 120])
    p, q = fc.predict_at(series, origins, 5), again.predict_at(series, origins, 5)
    np.testing.assert_array_equal(p.point, q.point)
    np.testing.assert_array_equal(p.quantiles, q.quantiles)
    assert p.point.shape == (3, 5) and p.quantiles.shape == (3, 5, 3)
    x = again.inputs(series)  # what the net reads at the end of the series
    assert x.shape == (1, 12, 2)
    np.testing.assert_array_equal(again.net(x).detach(), fc.net(fc.inputs(series)).detach())
    assert np.all(p.lower <= p.point) and np.all(p.point <= p.upper)


def test_load_rejects_other_runs(tmp_path):
    fc = Forecaster(small())
    fc.fit(make_series(), TrainConfig(epochs=1))
    fc.save(tmp_path)
    cfg = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(cfg.replace("lstmlens-forecast", "lstmlens-text"))
    with pytest.raises(ValueError, match="not a forecast run"):
        Forecaster.load(tmp_path)
    (tmp_path / "config.json").write_text(cfg.replace('"scaler"', '"scalar"'))
    with pytest.raises(ValueError, match="incomplete forecast config"):
        Forecaster.load(tmp_path)


def test_recursive_mode_feeds_its_forecast_back():
    series = make_series()
    fc = Forecaster(small(mode="recursive"))
    fc.fit(series, FAST)
    assert fc.net.config.out_steps == 1
    three = fc.predict_at(series, np.array([100]), 3).point[0]
    # step 2 from origin 100 = step 1 from origin 101 once y[100] is the step-1 forecast
    fed = Series(**{**series.__dict__, "values": series.values.copy()})
    fed.values[100] = three[0]
    assert fc.predict_at(fed, np.array([101]), 1).point[0, 0] == pytest.approx(three[1], rel=1e-6)


def test_direct_mode_rolls_past_its_horizon():
    series = make_series()
    fc = Forecaster(small(horizon=4))
    fc.fit(series, FAST)
    six = fc.forecast(series, 6).point[0]
    four = fc.forecast(series, 4).point[0]
    np.testing.assert_array_equal(six[:4], four)
    extended = Series(
        values=np.r_[series.values, four],
        covariates=np.zeros((124, 0)),
        name="y",
        index=pd.RangeIndex(124),
    )
    np.testing.assert_allclose(six[4:], fc.forecast(extended, 2).point[0], rtol=1e-6)


def test_predict_checks_its_input():
    fc = Forecaster(small(log=True))
    with pytest.raises(ValueError, match="not fitted"):
        fc.forecast(make_series(), 2)
    fc.fit(make_series(), TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"reads covariates \[\], the series has \['c'\]"):
        fc.forecast(make_series(covariate=True), 2)
    neg = make_series()
    neg = Series(**{**neg.__dict__, "values": neg.values - 100})
    with pytest.raises(ValueError, match="log=True needs positive values"):
        fc.forecast(neg, 2)
    with pytest.raises(ValueError, match="need at least window=12 rows"):
        fc.forecast(make_series().head(5), 2)


def test_evaluate_scores_model_and_baselines_on_the_test_rows():
    series = make_series()
    fc = Forecaster(small(test_size=12, val_size=12, quantiles=(0.2, 0.5, 0.8)))
    split = fc.split(series)
    fc.fit(series, FAST, split)
    ev = evaluate(fc, series, split, baselines=("naive", "seasonal_naive", "drift"))
    np.testing.assert_array_equal(ev.origins, [108, 111, 114, 117])
    np.testing.assert_array_equal(ev.actual.ravel(), series.values[108:])
    m = ev.metrics
    assert m["model"]["mae"] == pytest.approx(mae(series.values[108:], ev.model.point.ravel()))
    assert m["model"]["rmse"] == pytest.approx(rmse(series.values[108:], ev.model.point.ravel()))
    inside = (ev.actual >= ev.model.lower) & (ev.actual <= ev.model.upper)
    assert m["model"]["coverage"] == pytest.approx(inside.mean())
    assert set(m["baselines"]) == {"naive", "seasonal_naive", "drift"}
    assert m["test"]["season"] == 12 and m["test"]["first"] == "2009-01-01"
    naive_mae = np.mean(np.abs(ev.actual - series.values[ev.origins - 1, None]))
    assert m["baselines"]["naive"]["mae"] == pytest.approx(naive_mae)
    assert ev.best_baseline() in m["baselines"]


def test_backtest_rolls_over_folds():
    series = make_series()
    result = backtest(series, small(val_size=12), TrainConfig(epochs=1), folds=2, test_size=6)
    assert [f["test"]["first"] for f in result["folds"]] == [
        "2009-01-01",
        "2009-07-01",
    ]  # rows 108, 114
    assert [f["test"]["origins"] for f in result["folds"]] == [2, 2]
    maes = [f["model"]["mae"] for f in result["folds"]]
    assert result["mean"]["model"]["mae"] == pytest.approx(np.mean(maes))
    assert "arima" in result["mean"] and "naive" in result["mean"]
