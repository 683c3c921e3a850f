"""The global model's statistical anchor and blend: honest anchors, a network that starts
at its anchor, and the forecasts of train and predict."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from lstmlens.cli.main import main
from lstmlens.data.panel import Panel
from lstmlens.data.panel_windows import PanelScaler
from lstmlens.tasks.global_anchor import AnchoredWindows, blend, panel_anchor, series_anchor
from lstmlens.tasks.global_net import GlobalConfig, GlobalNet
from lstmlens.tasks.global_predict import panel_forecast
from lstmlens.tasks.global_run import TrainOptions, run_global
from lstmlens.tasks.statistical import quiet
from lstmlens.tasks.theta import theta

H, M = 6, 12
NET = {"segment": 6, "hidden_size": 8}
STILL = TrainOptions(epochs=1, batch_size=16, lr=1e-30, patience=None)  # weights stay put
QUICK = {"baselines": ("naive",), "plots": False, "val_horizons": 0}


def _panel(n: int = 3, length: int = 60) -> Panel:
    g = np.random.default_rng(0)
    parts = [
        20 + 3 * s + 0.05 * np.arange(length - 4 * s)
        + 2 * np.sin(2 * np.pi * np.arange(length - 4 * s) / M) + 0.2 * g.normal(size=length - 4 * s)
        for s in range(n)
    ]  # fmt: skip
    lengths = [len(p) for p in parts]
    return Panel(
        np.concatenate(parts), np.r_[0, np.cumsum(lengths)], tuple(f"s{k}" for k in range(n))
    )


def test_anchors_never_read_the_rows_they_forecast():
    y = _panel().series(0)
    base = series_anchor(y, 48, H, M, "theta", first=24, every=H)
    for cut in (31, 48):
        changed = y.copy()
        changed[cut:] *= 3.0
        other = series_anchor(changed, 48, H, M, "theta", first=24, every=H)
        np.testing.assert_allclose(other[24 : cut + 1], base[24 : cut + 1], rtol=1e-10)
        assert not np.allclose(other[cut + 1 :], base[cut + 1 :])


def test_the_last_fit_is_theta_on_the_training_rows():
    y = _panel().series(1)
    a = series_anchor(y, 40, H, M, "theta", first=24, every=H)
    want = theta(y, 40, np.array([40, 45]), H, M, quiet=quiet)[0]
    np.testing.assert_allclose(a[[40, 45]], want, rtol=1e-10)


def test_anchored_windows_carry_each_origins_anchor():
    panel = _panel()
    scaler = PanelScaler.fit(panel, panel.lengths - H, "mean")
    anchors, failed = panel_anchor(panel, panel.lengths - H, H, M, "theta", scaler)
    assert failed == [] and anchors.shape == (len(panel.values), H)
    z = scaler.transform(panel)
    windows = AnchoredWindows(anchors, z, panel.offsets, np.zeros(3, int), panel.lengths, 12, H)
    x, y, i, a = windows.gather(np.arange(len(windows)))
    series, origin = windows.locate(np.arange(len(windows)))
    np.testing.assert_array_equal(a.numpy(), anchors[panel.offsets[series] + origin])
    assert x.shape == (len(windows), 12) and y.shape == a.shape


def test_an_anchored_network_starts_at_its_anchor():
    net = GlobalNet(GlobalConfig(window=12, horizon=H, anchored=True, members=3, **NET)).eval()
    x, anchor = torch.randn(5, 12), torch.randn(5, H)
    assert torch.equal(net(x, torch.zeros(5, dtype=torch.long), anchor), anchor)
    with pytest.raises(ValueError, match="anchor"):
        net(x, torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("options", [{"scaling": "mean", "deseasonalise": True}, {}])
def test_untrained_anchored_run_forecasts_theta_in_train_and_predict(tmp_path, options):
    panel = _panel()
    metrics = run_global(panel, tmp_path / "run", 12, H, M, NET, STILL, anchor="theta",
                         **options, **QUICK)  # fmt: skip
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["anchor"] == "theta" and config["net"]["anchored"]
    past = panel.trim_end(H)
    rows, point, _, _, _ = panel_forecast(tmp_path / "run", past)
    for k, i in enumerate(rows):
        y = past.series(i)
        want = theta(y, len(y), np.array([len(y)]), H, M, quiet=quiet)[0][0]
        np.testing.assert_allclose(point[k], want, rtol=1e-4)
        truth = panel.series(i)[-H:]
        mae = metrics["per_series"][k]["model"]["mae"]
        assert mae == pytest.approx(np.mean(np.abs(truth - want)), rel=1e-4)


def test_blend_is_the_mean_of_network_and_theta(tmp_path):
    panel = _panel()
    options = replace(STILL, lr=1e-2)
    run_global(panel, tmp_path / "net", 12, H, M, NET, options, **QUICK)
    run_global(panel, tmp_path / "mix", 12, H, M, NET, options, blend="theta", **QUICK)
    _, net, _, _, _ = panel_forecast(tmp_path / "net", panel)
    rows, mix, _, _, _ = panel_forecast(tmp_path / "mix", panel)
    ends = panel.lengths[rows]
    np.testing.assert_allclose(mix, blend(net, panel, np.asarray(rows), ends, ends, M, "theta"))
    stat = np.stack([theta(panel.series(i), e, np.array([e]), H, M, quiet=quiet)[0][0]
                     for i, e in zip(rows, ends, strict=True)])  # fmt: skip
    np.testing.assert_allclose(mix, 0.5 * (net + stat), rtol=1e-6)


def _long_csv(tmp_path) -> str:
    panel = _panel()
    lines = ["shop,month,units"] + [
        f"s{i},{t},{v:.6f}" for i in range(len(panel)) for t, v in enumerate(panel.series(i))
    ]
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _argv(tmp_path) -> list[str]:
    return ["forecast", "train", _long_csv(tmp_path), "--id", "shop", "--date", "month",
            "--target", "units", "--season", "12", "--window", "12", "--horizon", str(H),
            "--hidden", "8", "--epochs", "1", "--quiet", "--baselines", "naive"]  # fmt: skip


@pytest.mark.slow
def test_cli_anchor_blend_and_members_train_and_predict(tmp_path):
    out = tmp_path / "run"
    argv = [*_argv(tmp_path), "--out", str(out), "--anchor", "theta", "--blend", "theta"]
    assert main([*argv, "--members", "2"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["anchor"], config["blend"], config["net"]["members"]) == ("theta", "theta", 2)
    csv = tmp_path / "f.csv"
    assert main(["forecast", "predict", str(out), "--output", str(csv)]) == 0
    assert len(csv.read_text().splitlines()) == 1 + 3 * H


def test_cli_anchor_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    argv = _argv(tmp_path)
    for extra in (["--anchor", "level"], ["--protocol", "ltsf", "--anchor", "theta"]):
        bad = tmp_path / "bad"
        assert main([*argv, "--out", str(bad), *extra]) == 2
        err = capsys.readouterr().err
        assert "--anchor" in err and err.count("\n") == 1, err
        assert not bad.exists()


def test_an_unknown_anchor_or_blend_is_refused_before_training(tmp_path):
    for option in ({"anchor": "arima"}, {"blend": "naive"}):
        with pytest.raises(ValueError, match=f"run_global: {next(iter(option))} must be one of"):
            run_global(_panel(), tmp_path / "run", 12, H, M, NET, STILL, **option, **QUICK)
        assert not (tmp_path / "run").exists()


def test_a_failed_fit_falls_back_to_the_last_value_and_is_named(monkeypatch):
    import lstmlens.tasks.global_anchor as ga

    def broken(*_):
        raise ValueError("no fit")

    monkeypatch.setitem(ga.ANCHORS, "theta", broken)
    panel = _panel(2)
    scaler = PanelScaler.fit(panel, panel.lengths - H, "standard")
    anchors, failed = panel_anchor(panel, panel.lengths - H, H, M, "theta", scaler)
    assert failed == ["s0", "s1"]
    z = scaler.transform(panel)
    origins = np.arange(1, len(panel.values))
    origins = origins[~np.isin(origins, panel.offsets)]  # rows with one value before them
    np.testing.assert_allclose(anchors[origins], np.repeat(z[origins - 1, None], H, 1), rtol=1e-6)
