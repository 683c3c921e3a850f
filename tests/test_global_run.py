"""The global runner on the shared Trainer: resume, 2 processes, scoring across series,
series conditioning, save -> load, and what never leaks from the test rows."""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from lstmlens.data.panel import Panel, from_long
from lstmlens.data.panel_windows import PanelScaler, PanelWindows, last_h_split
from lstmlens.tasks.global_eval import score_panel
from lstmlens.tasks.global_net import GlobalConfig, GlobalNet
from lstmlens.tasks.global_plots import pick_series
from lstmlens.tasks.global_run import TrainOptions, load_global, predict, run_global
from lstmlens.tasks.global_task import GlobalTask
from lstmlens.train import TrainConfig, Trainer, seed_everything

NET = {"segment": 6, "hidden_size": 8}
FAST = TrainOptions(epochs=3, batch_size=16, patience=None)
QUICK = {"baselines": ("naive", "seasonal_naive"), "plots": False}


def sines(n_series: int = 5, length: int = 54, static: bool = False) -> pd.DataFrame:
    """A long table: noisy sines of different level, phase, length and start."""
    rows, g = [], np.random.default_rng(0)
    for s in range(n_series):
        n = length - 2 * s
        dates = pd.date_range(pd.Timestamp("2000-01-01") + pd.DateOffset(months=s), periods=n,
                              freq="MS")  # fmt: skip
        y = 10 * (s + 1) + np.sin(2 * np.pi * np.arange(n) / 12 + s) + 0.1 * g.normal(size=n)
        frame = pd.DataFrame({"sku": f"s{s}", "month": dates, "qty": y})
        if static:
            frame["size"], frame["region"] = 1.0 + s, float(s % 2)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


# ------------------------------------------------------------------ resume


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    panel = from_long(sines(), "sku", "qty", "month")
    whole = run_global(panel, tmp_path / "whole", 12, 6, 12, NET, FAST, **QUICK)
    part = tmp_path / "part"
    run_global(panel, part, 12, 6, 12, NET, TrainOptions(epochs=1, batch_size=16), **QUICK)
    resumed = run_global(panel, part, 12, 6, 12, NET, FAST, resume=True, **QUICK)
    a, b = weights(tmp_path / "whole"), weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["per_series"] == whole["per_series"]
    assert [e["epoch"] for e in resumed["training"]["epochs"]] == [1, 2, 3]
    assert len((part / "metrics.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: (p, 12, 3), "horizon"),
        (lambda p: (Panel(p.values, p.offsets, ("x", *p.ids[1:]), p.starts, p.freq), 12, 6),
         "ids_sha256"),
        (lambda p: (p, 6, 6), "window"),
    ],
)  # fmt: skip
def test_resume_refuses_other_series_window_or_horizon(tmp_path, change, field):
    panel = from_long(sines(), "sku", "qty", "month")
    run_global(panel, tmp_path, 12, 6, 12, NET, TrainOptions(epochs=1, batch_size=16), **QUICK)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    other, window, horizon = change(panel)
    with pytest.raises(ValueError, match=rf"global\.{field} differs"):
        run_global(other, tmp_path, window, horizon, 12, NET, FAST, resume=True, **QUICK)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != ".lstmlens-lock"} == {
        k: v for k, v in before.items() if k != ".lstmlens-lock"
    }


# ---------------------------------------------------------- two processes


def _training(static: bool = False):
    """2 epochs of the global model in float64: 5 series, batch 8, id embedding + static."""
    cols = ("size", "region") if static else ()
    panel = from_long(sines(static=static), "sku", "qty", "month", static=cols)
    split = last_h_split(panel.lengths, 6)
    z = PanelScaler.fit(panel, split.train_end).transform(panel, dtype=np.float64)
    part = lambda name: PanelWindows(z, panel.offsets, *split.part(name), 12, 6)  # noqa: E731
    seed_everything(0)
    config = GlobalConfig(window=12, horizon=6, segment=6, hidden_size=6, cell="lstm",
                          series=len(panel), id_embedding=3, static=2 if static else 0)  # fmt: skip
    net = GlobalNet(config).double()
    if static:
        net.set_static(panel.static)
    task = GlobalTask(part("train"), part("val"), batch_size=8)
    result = Trainer(net, task, TrainConfig(epochs=2, lr=0.01)).fit()
    return net.state_dict(), result.history


def _entry(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))  # fmt: skip
    try:
        torch.save(_training(static=True), f"{folder}/result-{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no gloo")
def test_two_processes_equal_one_process_at_the_same_global_batch(tmp_path):
    """2 gloo ranks x 4 windows per step == 1 process x 8 windows, within 1e-10 (float64)."""
    alone, history = _training(static=True)
    folder = tempfile.mkdtemp(dir=tmp_path)
    context = mp.start_processes(_entry, args=(2, folder), nprocs=2, start_method="fork",
                                 join=False)  # fmt: skip
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            raise TimeoutError("2 ranks did not finish in 120 s")
    for rank in range(2):
        state, ranked = torch.load(f"{folder}/result-{rank}.pt", weights_only=False)
        for k in alone:
            assert (state[k] - alone[k]).abs().max().item() <= 1e-10, k
        assert [r["val_loss"] for r in ranked] == pytest.approx([r["val_loss"] for r in history])


# -------------------------------------------------------------- scoring


def test_per_series_baselines_share_and_aggregates():
    panel = from_long(sines(n_series=4), "sku", "qty", "month")
    origins = panel.lengths - 6
    truth = np.stack([panel.series(i)[-6:] for i in range(4)])
    forecasts = truth + np.array([0.0, 0.01, 5.0, 5.0])[:, None]  # two exact-ish, two far off
    scored = score_panel(panel, origins, forecasts, 6, 12, ("naive", "seasonal_naive", "theta"))
    per = scored["per_series"]
    assert [p["id"] for p in per] == ["s0", "s1", "s2", "s3"]
    assert set(scored["baselines"]) == {"naive", "seasonal_naive", "theta"}
    for name, row in scored["baselines"].items():
        assert row["series"] == 4
        assert row["smape"] == pytest.approx(np.mean([p[name]["smape"] for p in per]))
        wins = np.mean([p["model"]["mae"] < p[name]["mae"] for p in per])
        assert scored["model"]["beats"][name] == wins
    assert scored["model"]["mase"] == pytest.approx(np.mean([p["model"]["mase"] for p in per]))
    ratio = [p["model"]["mae"] / p["seasonal_naive"]["mae"] for p in per]
    assert [p["ratio"] for p in per] == pytest.approx(ratio)
    assert scored["ratio_reference"] == "seasonal_naive"
    assert pick_series(np.array(ratio)) == {
        "best": [0],
        "median": [2],
        "worst": [int(np.argmax(ratio))],
    }


def test_a_spent_time_budget_leaves_fitted_baselines_out_and_says_how_often():
    panel = from_long(sines(n_series=3), "sku", "qty", "month")
    scored = score_panel(panel, panel.lengths - 6, np.zeros((3, 6)), 6, 12, ("naive", "ets"),
                         budget_s=0.0)  # fmt: skip
    assert "ets" not in scored["baselines"] and scored["baselines"]["naive"]["series"] == 3
    assert "(3 series)" in scored["skipped_baselines"]["ets"]


def test_run_global_writes_metrics_plots_and_reloads_identically(tmp_path):
    panel = from_long(sines(n_series=8), "sku", "qty", "month")
    metrics = run_global(panel, tmp_path, 12, 6, 12, NET, FAST, baselines=("naive",))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["baselines"].keys() == {"naive"} and len(saved["per_series"]) == 8
    assert saved["model"]["beats"].keys() == {"naive"} and saved["ratio_reference"] == "naive"
    for name in ("forecasts.png", "error_ratio.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))
    net, scaler, _ = load_global(tmp_path)
    split = last_h_split(panel.lengths, 6)
    test = PanelWindows(scaler.transform(panel), panel.offsets, *split.part("test"), 12, 6, 6)
    pred, _, which = predict(net, test)
    again = scaler.inverse(pred, which)
    first = [s["model"]["mae"] for s in metrics["per_series"]]
    assert [float(np.mean(np.abs(panel.series(i)[-6:] - again[k]))) for k, i in
            enumerate(which)] == pytest.approx(first, rel=1e-12)  # fmt: skip


def test_test_rows_never_reach_the_model_or_its_scalers(tmp_path):
    """Without validation the last H rows are only scored: change them wildly, same model."""
    frame = sines()
    spiked = frame.copy()
    last = spiked.groupby("sku").tail(6).index
    spiked.loc[last, "qty"] = 1e6
    runs = []
    for k, table in enumerate((frame, spiked)):
        panel = from_long(table, "sku", "qty", "month")
        run_global(panel, tmp_path / str(k), 12, 6, 12, NET, FAST, val_horizons=0, **QUICK)
        runs.append(tmp_path / str(k))
    a, b = weights(runs[0]), weights(runs[1])
    assert all(torch.equal(a[k], b[k]) for k in a)
    (_, s0, _), (_, s1, _) = load_global(runs[0]), load_global(runs[1])
    assert np.array_equal(s0.mean, s1.mean) and np.array_equal(s0.std, s1.std)


# ------------------------------------------------------- series conditioning


def test_id_embedding_and_static_covariates_train_save_and_reload(tmp_path):
    panel = from_long(sines(static=True), "sku", "qty", "month", static=("size", "region"))
    assert panel.static.tolist() == [[1.0 + s, float(s % 2)] for s in range(5)]
    metrics = run_global(panel, tmp_path, 12, 6, 12, NET | {"id_embedding": 3}, FAST, **QUICK)
    net, scaler, config = load_global(tmp_path)
    assert net.config.id_embedding == 3 and net.config.static == 2
    import lstmlens

    loaded, same = lstmlens.load_run(tmp_path)  # the public loader knows global runs
    assert isinstance(loaded, GlobalNet) and same == config
    assert config["static"]["names"] == ["size", "region"]
    assert net.static_table.shape == (5, 2)
    np.testing.assert_allclose(net.static_table.mean(0).numpy(), 0.0, atol=1e-6)
    x = torch.zeros(2, 12)
    with torch.no_grad():  # the series number changes the forecast of the same window
        y = net(x, torch.tensor([0, 4]))
    assert not torch.allclose(y[0], y[1])
    assert np.isfinite(metrics["model"]["mae"])


def test_static_covariates_must_be_constant_numbers_of_a_long_table():
    frame = sines(static=True)
    frame.loc[3, "size"] = 7.0
    with pytest.raises(ValueError, match="'size' is not constant in series 's0' \\(1 and 7\\)"):
        from_long(frame, "sku", "qty", "month", static=("size",))
    frame = sines(static=True).astype({"region": object})
    frame.loc[60, "region"] = "north"
    with pytest.raises(ValueError, match="'region' of series 's1' is not a number: line 62"):
        from_long(frame, "sku", "qty", "month", static=("region",))


def test_plain_global_net_keeps_the_segment_net_parameter_names():
    from lstmlens.tasks.segment_model import SegmentConfig, SegmentNet

    plain = GlobalNet(GlobalConfig(window=12, horizon=6, segment=6, hidden_size=8))
    assert plain.state_dict().keys() == SegmentNet(SegmentConfig(12, 6, 6, 8)).state_dict().keys()
    GlobalConfig(window=12, horizon=6, segment=6, channels=2)  # a run saved before `series`
    with pytest.raises(ValueError, match="need series >= 1"):
        GlobalConfig(window=12, horizon=6, segment=6, id_embedding=2)


def test_a_signal_stops_the_run_with_a_checkpoint_and_resume_finishes_it(tmp_path):
    """SIGINT after epoch 1: the best model and config are saved, no metrics; resumed to 3
    epochs it equals the run never stopped."""
    import os
    import signal

    from lstmlens.train import NullReporter

    class Interrupt(NullReporter):
        def epoch_end(self, metrics):
            os.kill(os.getpid(), signal.SIGINT)

    panel = from_long(sines(), "sku", "qty", "month")
    run_global(panel, tmp_path / "whole", 12, 6, 12, NET, FAST, **QUICK)
    part = tmp_path / "part"
    stopped = run_global(panel, part, 12, 6, 12, NET, FAST, reporter=Interrupt(), **QUICK)
    assert stopped["interrupted"] and [e["epoch"] for e in stopped["training"]["epochs"]] == [1]
    assert (part / "model.safetensors").is_file() and not (part / "metrics.json").exists()
    assert load_global(part)[0].config.window == 12
    run_global(panel, part, 12, 6, 12, NET, FAST, resume=True, **QUICK)
    a, b = weights(tmp_path / "whole"), weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_predict_from_the_test_origin_reproduces_the_scored_forecasts(tmp_path):
    """predict on the series cut at their test origin gives the forecasts that were scored,
    with the seasonal index and mean scaler applied both ways."""
    from lstmlens.tasks.global_predict import panel_forecast

    panel = from_long(sines(), "sku", "qty", "month")
    metrics = run_global(panel, tmp_path, 12, 6, 12, NET, FAST, scaling="mean",
                         deseasonalise=True, **QUICK)  # fmt: skip
    index = np.array(json.loads((tmp_path / "config.json").read_text())["season_index"]["index"])
    assert index.shape == (5, 12) and np.all(np.abs(index - 1).max(axis=1) > 0.01)  # seasonal
    rows, point, _, _, _ = panel_forecast(tmp_path, panel.trim_end(6))
    assert rows == list(range(5))
    mae = [float(np.mean(np.abs(panel.series(i)[-6:] - point[i]))) for i in rows]
    assert mae == pytest.approx([s["model"]["mae"] for s in metrics["per_series"]], rel=1e-9)
