"""Options of the global model: mean scaler, sMAPE loss, seeded ensemble, seasonal index,
CPU-time budget."""

import json

import numpy as np
import pytest
import torch

from lstmlens.data.panel import Panel
from lstmlens.data.panel_windows import PanelScaler
from lstmlens.tasks.global_run import TrainOptions, fit, run_global, smape_loss
from lstmlens.tasks.global_season import SeasonalIndex
from lstmlens.tasks.segment_model import SegmentConfig, SegmentNet


def _panel(parts: list[np.ndarray]) -> Panel:
    lengths = [len(p) for p in parts]
    ids = tuple(f"s{i}" for i in range(len(parts)))
    return Panel(np.concatenate(parts), np.r_[0, np.cumsum(lengths)], ids)


def test_mean_scaler_divides_by_the_training_mean_absolute_value_only():
    panel = _panel([np.array([1.0, 3.0, 100.0]), np.array([-2.0, 2.0, 4.0, 8.0])])
    scaler = PanelScaler.fit(panel, np.array([2, 3]), kind="mean")
    np.testing.assert_allclose(scaler.mean, [0.0, 0.0])
    np.testing.assert_allclose(scaler.std, [2.0, 8.0 / 3.0])  # rows after train_end unseen
    z = scaler.transform(panel, dtype=np.float64)
    np.testing.assert_allclose(z[:3], [0.5, 1.5, 50.0])
    with pytest.raises(ValueError, match="kind"):
        PanelScaler.fit(panel, np.array([2, 3]), kind="robust")


def test_smape_loss_is_scale_free_and_matches_the_formula():
    f, y = torch.tensor([[1.0, 3.0]]), torch.tensor([[2.0, 3.0]])
    assert float(smape_loss(f, y)) == pytest.approx((2 * 1 / 3 + 0) / 2)
    assert float(smape_loss(7 * f, 7 * y)) == pytest.approx(float(smape_loss(f, y)))


def test_ensemble_trains_each_member_and_forecasts_their_median():
    config = SegmentConfig(window=8, horizon=6, segment=4, hidden_size=8, members=3)
    net = SegmentNet(config)
    x = torch.randn(5, 8)
    stacked = net.train()(x)
    assert stacked.shape == (3, 5, 6)
    with torch.no_grad():
        members = torch.stack([net._member(x, None)] + [m(x, None) for m in net.eval().others])
        np.testing.assert_allclose(net(x).numpy(), members.median(dim=0).values.numpy())
    single = SegmentNet(SegmentConfig(window=8, horizon=6, segment=4, hidden_size=8))
    assert set(single.state_dict()) < set(net.state_dict())  # member 0 keeps its names
    with pytest.raises(ValueError, match="members"):
        SegmentConfig(window=8, horizon=6, segment=4, members=0)


def _seasonal(length: int, level: float = 100.0) -> np.ndarray:
    pattern = np.array([0.8, 0.9, 1.0, 1.1, 1.3, 1.2, 1.0, 0.9, 0.8, 0.9, 1.0, 1.1])
    pattern = pattern / pattern.mean()
    t = np.arange(length)
    return level * (1 + 0.002 * t) * pattern[t % 12]


def test_seasonal_index_recovers_the_pattern_from_training_rows_only():
    rng = np.random.default_rng(0)
    seasonal = _seasonal(96)
    flat = 50 + rng.normal(0, 1, 96)  # no seasonality: index of ones
    late = _seasonal(96)
    late[60:] *= 5.0  # a break after the training rows must not change the index
    panel = _panel([seasonal, flat, late])
    index = SeasonalIndex.fit(panel, np.array([96, 96, 60]), season=12)
    pattern = seasonal[:12] / (100 * (1 + 0.002 * np.arange(12)))
    np.testing.assert_allclose(index.index[0], pattern, rtol=0.02)
    np.testing.assert_array_equal(index.index[1], np.ones(12))
    np.testing.assert_allclose(index.index[2], pattern, rtol=0.02)
    assert index.flat(panel)[96 + 96 + 13] == index.index[2, 1]
    np.testing.assert_array_equal(index.factors(np.array([0]), np.array([10]), 3),
                                  index.index[[0], [10, 11, 0]][None])  # fmt: skip
    again = SeasonalIndex.from_dict(json.loads(json.dumps(index.to_dict())))
    np.testing.assert_array_equal(again.index, index.index)
    negative = _panel([seasonal - 150.0])
    assert np.all(SeasonalIndex.fit(negative, np.array([96]), 12).index == 1.0)


@pytest.mark.slow
def test_run_global_deseasonalised_beats_raw_on_seasonal_series(tmp_path):
    """With the same short training, dividing the season out (and multiplying it back)
    leaves the network a smooth trend: far closer than on the raw seasonal series."""
    panel = _panel([_seasonal(96, level) for level in (10.0, 100.0, 1000.0)])
    options = TrainOptions(epochs=8, batch_size=16, lr=1e-2, loss="smape")
    smape = {}
    for flag in (False, True):
        metrics = run_global(panel, tmp_path / str(flag), window=24, horizon=12, season=12,
                             net={"segment": 6, "hidden_size": 8}, options=options,
                             val_horizons=0, scaling="mean", deseasonalise=flag)  # fmt: skip
        smape[flag] = metrics["model"]["smape"]
    assert smape[True] < 0.5 * smape[False], smape
    config = json.loads((tmp_path / "True" / "config.json").read_text())
    assert len(config["season_index"]["index"]) == 3
    assert json.loads((tmp_path / "False" / "config.json").read_text())["season_index"] is None


def test_cpu_clock_budget_stops_training():
    net = SegmentNet(SegmentConfig(window=8, horizon=4, segment=4, hidden_size=8))
    from lstmlens.data.panel_windows import PanelWindows

    z = np.sin(np.arange(400.0) / 3).astype(np.float32)
    windows = PanelWindows(z, np.array([0, 400]), np.array([0]), np.array([400]), 8, 4)
    options = TrainOptions(epochs=1000, batch_size=4, max_minutes=0.002, clock="cpu")
    history = fit(net, windows, None, options)
    assert history["stopped"] == "time" and len(history["epochs"]) < 1000
    with pytest.raises(ValueError, match="clock"):
        fit(net, windows, None, TrainOptions(clock="sundial"))
