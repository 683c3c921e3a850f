"""Forecast quality: the LSTM against naive, seasonal naive, drift, ETS and ARIMA, same test rows.

Two series, each scored with MAE, RMSE, sMAPE, MASE (and MAPE, for the Darts reference):

* AirPassengers (``../shared/data/series/AirPassengers.csv``): horizon 12, test = the last
  12 months (1960) forecast from one origin (end of 1959); validation 14 months before it.
  The model reads log(passengers) (``--log`` on the command line): the series grows
  multiplicatively.
* co2 (statsmodels, weekly, gaps interpolated): exactly the ``lstmlens forecast train``
  defaults (window 30, horizon 1, last 10% = 228 weeks tested one step ahead).

The LSTM uses the command-line training defaults (200 epochs, Adam lr 3e-3, hidden 32,
weights of the best validation epoch). It is trained with ``--seeds`` seeds (0, 1, ...);
each seed gets a row, and the row ``LSTM`` is their ensemble: the mean of the seeds'
forecasts. Baselines are fitted on all rows before the test part.

    .venv/bin/python benchmarks/forecast_quality.py [--seeds 3] [--only air|co2] [--quick]

Exit status 1 if the ensemble's MAE does not beat seasonal naive on a series.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lstmlens.cli.forecast import TRAIN_DEFAULTS
from lstmlens.data.datasets import load_co2
from lstmlens.data.series import from_pandas, read_csv
from lstmlens.tasks.forecast import ForecastConfig, Forecaster
from lstmlens.tasks.forecast_eval import evaluate, metrics_table
from lstmlens.tasks.metrics import all_metrics
from lstmlens.train import TrainConfig
from lstmlens.train.threads import torch_threads

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "series"


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(actual - forecast) / np.abs(actual)))


def score(name, series, config, seeds, epochs):
    """Train one model per seed, then print and return the table rows."""
    train = [TrainConfig(epochs=epochs, lr=TRAIN_DEFAULTS["lr"], seed=s) for s in range(seeds)]
    points, rows, ev = [], {}, None
    started = time.monotonic()
    for tc in train:
        fc = Forecaster(config)
        split = fc.split(series)
        result = fc.fit(series, tc, split)
        ev = evaluate(fc, series, split)
        points.append(ev.model.point)
        rows[f"LSTM seed {tc.seed}"] = {**ev.metrics["model"], "best_epoch": result.best_epoch}
        print(f"  {name} seed {tc.seed}: MAE {ev.metrics['model']['mae']:.4g} "
              f"(best epoch {result.best_epoch})", file=sys.stderr)  # fmt: skip
    insample = series.values[: split.val_end]
    ensemble = np.mean(points, axis=0)  # (N, H)
    rows = {"LSTM": all_metrics(ev.actual, ensemble, insample, ev.metrics["test"]["mase_season"]),
            **rows, **ev.metrics["baselines"]}  # fmt: skip
    forecasts = {"LSTM": ensemble, **{k: ev.baselines[k] for k in ev.metrics["baselines"]}}
    for key, f in forecasts.items():
        rows[key]["mape"] = mape(ev.actual, f)
    test = ev.metrics["test"]
    print(f"\n{name}: test {test['first']} .. {test['last']} ({test['rows']} rows, "
          f"{test['origins']} origin(s), horizon {test['horizon']}), {seeds} seed(s), "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    table = metrics_table(rows, ev.metrics["baseline_models"])
    mapes = {k: r["mape"] for k, r in rows.items() if "mape" in r}
    print(table)
    print("MAPE %: " + ", ".join(f"{k} {v:.2f}" for k, v in mapes.items()))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="models per series (3)")
    ap.add_argument("--only", choices=("air", "co2"), default=None)
    ap.add_argument("--quick", action="store_true", help="20 epochs, 1 seed (smoke run)")
    args = ap.parse_args()
    epochs = 20 if args.quick else TRAIN_DEFAULTS["epochs"]
    seeds = 1 if args.quick else args.seeds
    hidden = TRAIN_DEFAULTS["hidden"]
    ok = True
    if args.only in (None, "air"):
        path = SHARED / "AirPassengers.csv"
        if not path.is_file():
            print(f"skipping AirPassengers: {path} not found", file=sys.stderr)
        else:
            series = read_csv(path)
            config = ForecastConfig(horizon=12, test_size=12, log=True, hidden_size=hidden)
            rows = score("AirPassengers", series, config, seeds, epochs)
            ok &= rows["LSTM"]["mae"] < rows["seasonal_naive"]["mae"]
    if args.only in (None, "co2"):
        series = from_pandas(load_co2(), fill="interpolate", source="statsmodels co2")
        rows = score("co2", series, ForecastConfig(hidden_size=hidden), seeds, epochs)
        ok &= rows["LSTM"]["mae"] < rows["seasonal_naive"]["mae"]
    print(
        "\nLSTM MAE beats seasonal naive on every series" if ok else "\nFAILED: seasonal naive wins"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    with torch_threads(1):  # as the CLI trains (its --threads default): small nets, shared cores
        sys.exit(main())
