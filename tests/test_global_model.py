"""Segment model, the ltsf protocol and the global runner on tiny synthetic tables."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lstmlens.data.panel import Panel, from_long, from_wide
from lstmlens.tasks.global_run import TrainOptions, load_global, predict, run_global, run_ltsf
from lstmlens.tasks.ltsf import ltsf_data, parse_split
from lstmlens.tasks.segment_model import SegmentConfig, SegmentNet

TINY = {"segment": 4, "hidden_size": 8}


@pytest.mark.parametrize(
    ("cell", "variant", "channels"),
    [("gru", "vanilla", 0), ("lstm", "peephole", 3), ("rnn", "vanilla", 0)],
)
def test_segment_net_shapes_and_gradients(cell, variant, channels):
    config = SegmentConfig(
        window=12, horizon=10, cell=cell, variant=variant, channels=channels, **TINY
    )
    net = SegmentNet(config)
    x = torch.randn(5, 12)
    channel = torch.tensor([0, 1, 2, 0, 1]) if channels else None
    y = net(x, channel)
    assert y.shape == (5, 10)
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_segment_net_decodes_every_segment_from_the_same_state():
    """Parallel decoding: output segment m depends on position m only, not on the others,
    and the last-value normalisation makes the map shift-equivariant."""
    net = SegmentNet(SegmentConfig(window=8, horizon=8, **TINY)).eval()
    x = torch.randn(3, 8)
    with torch.no_grad():
        y = net(x)
        torch.testing.assert_close(net(x + 5.0), y + 5.0)
        net.pos.data[1] += 1.0  # change the second segment's position embedding
        y2 = net(x)
    torch.testing.assert_close(y2[:, :4], y[:, :4])
    assert not torch.allclose(y2[:, 4:], y[:, 4:])


def test_segment_config_errors():
    with pytest.raises(ValueError, match="window 10 must be a multiple of segment 4"):
        SegmentConfig(window=10, horizon=4, segment=4)
    with pytest.raises(ValueError, match="cell must be one of"):
        SegmentConfig(window=8, horizon=4, segment=4, cell="transformer")
    net = SegmentNet(SegmentConfig(window=8, horizon=4, **TINY))
    with pytest.raises(ValueError, match=r"SegmentNet: expected input \(B, 8\)"):
        net(torch.randn(2, 9))


def test_parse_split():
    assert parse_split("8640,2880,2880", 17420) == (8640, 2880, 2880)
    assert parse_split("0.7,0.1,0.2", 100) == (70, 10, 20)
    assert parse_split("0.7,0.1,0.2", 17420) == (12194, 1742, 3484)  # int(), val the rest
    for bad, message in [("1,2", "three positive"), ("0.8,0.2,0.2", "add up"),
                         ("60,30,20", "110 rows asked"), ("0.5,10,3", "fractions or three row")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_split(bad, 100)


def test_ltsf_split_and_normalisation_by_hand():
    """Two columns of 20 rows, split 10,5,5, window 4, horizon 2."""
    t = np.arange(20.0)
    frame = pd.DataFrame({"a": t, "b": 100.0 - 3 * t})
    panel = from_wide(frame, "all", date="")
    data = ltsf_data(panel, window=4, horizon=2, split="10,5,5")
    train_mean, train_std = 4.5, np.arange(10.0).std()
    np.testing.assert_allclose(data.scaler.mean, [train_mean, 100 - 3 * train_mean])
    np.testing.assert_allclose(data.scaler.std, [train_std, 3 * train_std])
    # Windows: train origins 4..8 (5), val 10..13 (4 = 5 - 2 + 1), test 15..18 (4), per column.
    assert (len(data.train), len(data.val), len(data.test)) == (10, 8, 8)
    x, y, i = data.test.gather(np.arange(len(data.test)))
    first = (np.arange(11.0, 15.0) - train_mean) / train_std  # inputs start 4 rows before 15
    np.testing.assert_allclose(x[0].numpy(), first, rtol=1e-6)
    last = (np.array([18.0, 19.0]) - train_mean) / train_std  # the last row is scored
    np.testing.assert_allclose(y[3].numpy(), last, rtol=1e-6)
    np.testing.assert_allclose(y[7].numpy(), -last, rtol=1e-6)  # b falls: its z mirrors a's
    assert i.tolist() == [0] * 4 + [1] * 4
    with pytest.raises(ValueError, match="one length"):
        ltsf_data(Panel(np.zeros(30), np.array([0, 20, 30]), ("a", "b")), 4, 2, "10,5,5")


def _sines(n_series: int = 6, length: int = 60) -> pd.DataFrame:
    """A long table: sines of different phase, level, length and start."""
    rows = []
    for s in range(n_series):
        start = pd.Timestamp("2000-01-01") + pd.DateOffset(months=s)
        n = length - 3 * s
        dates = pd.date_range(start, periods=n, freq="MS")
        y = 10 * (s + 1) + np.sin(2 * np.pi * np.arange(n) / 12 + s)
        rows.append(pd.DataFrame({"sku": f"s{s}", "month": dates, "qty": y}))
    return pd.concat(rows, ignore_index=True)


FAST = TrainOptions(epochs=2, batch_size=32, patience=5)


def test_run_global_writes_metrics_and_reloads_identically(tmp_path):
    frame = _sines()
    frame = pd.concat([frame, pd.DataFrame({"sku": "short", "month": frame.month[:10],
                                            "qty": np.ones(10)})])  # fmt: skip
    panel = from_long(frame, "sku", "qty", "month")
    metrics = run_global(panel, tmp_path, window=12, horizon=6, season=12,
                         net={"segment": 6, "hidden_size": 8}, options=FAST)  # fmt: skip
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["skipped"] == ["short"] and saved["series"] == 6
    assert len(saved["per_series"]) == 6
    assert {"naive", "seasonal_naive"} <= set(saved["baselines"])
    assert set(saved["model"]) >= {"mae", "rmse", "smape", "mase", "beats"}
    assert metrics["model"]["mae"] == pytest.approx(saved["model"]["mae"])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["task"] == "forecast" and config["kind"] == "global" and config["format_version"]

    net, scaler, config = load_global(tmp_path)
    kept = panel.drop_short(24)[0]
    np.testing.assert_allclose(scaler.mean, [kept.series(i)[:-12].mean() for i in range(6)])
    from lstmlens.data.panel_windows import PanelWindows, last_h_split

    split = last_h_split(kept.lengths, 6)
    test = PanelWindows(scaler.transform(kept), kept.offsets, *split.part("test"), 12, 6, 6)
    pred, _, which = predict(net, test)
    original = scaler.inverse(pred, which)
    from lstmlens.tasks.metrics import mae

    per = [mae(kept.series(i)[-6:], original[k]) for k, i in enumerate(which)]
    assert per == pytest.approx([s["model"]["mae"] for s in saved["per_series"]])


def test_run_ltsf_beats_nothing_but_reports_both(tmp_path):
    t = np.arange(200.0)
    frame = pd.DataFrame({"a": np.sin(t / 4), "b": np.cos(t / 7) * 3 + 1})
    panel = from_wide(frame, "all", date="")
    metrics = run_ltsf(panel, tmp_path, window=16, horizon=8, split="0.7,0.1,0.2",
                       net={"segment": 8, "hidden_size": 16, "channels": 2},
                       options=TrainOptions(epochs=3, batch_size=32))  # fmt: skip
    assert metrics["test_windows"] == 2 * (40 - 8 + 1)
    assert set(metrics["model"]) == {"mse", "mae"}
    assert metrics["baselines"]["naive"]["mse"] > 0
    per = metrics["per_series"]
    assert [p["id"] for p in per] == ["a", "b"]  # equal window counts: the mean of the two
    assert metrics["model"]["mse"] == pytest.approx(np.mean([p["model"]["mse"] for p in per]))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["model"] == metrics["model"]


def test_run_global_without_validation_keeps_shorter_series(tmp_path):
    panel = from_long(_sines(n_series=3, length=36), "sku", "qty", "month")  # 36, 33, 30 points
    metrics = run_global(panel, tmp_path, window=12, horizon=6, season=12, net=TINY | {"segment": 6},
                         options=FAST, val_horizons=0)  # fmt: skip
    assert metrics["series"] == 3 and metrics["skipped"] == []  # 30 >= 12 + 2 * 6
    training = metrics["training"]
    assert training["validation"] is False  # the training loss stands in for val_loss
    assert all(e["val_loss"] == e["train_loss"] for e in training["epochs"])
    metrics = run_global(panel, tmp_path / "v", window=12, horizon=6, net=TINY | {"segment": 6},
                         options=FAST, val_horizons=2)  # fmt: skip
    assert metrics["skipped"] == ["s1", "s2"]  # 33 and 30 < 12 + 4 * 6
