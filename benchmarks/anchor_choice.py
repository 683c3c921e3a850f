"""Which statistical anchor the forecaster should correct: each candidate alone, on one half.

For every series of the fixed M3 sample of ``forecast_quality.py`` (half A or B), each
anchor of ``forecast_norm.PARTS`` is fitted in the data's units on every row before the
test part (as the forecaster's final forecast is) and scored on the test part: the
share of series where its MAE beats seasonal naive, and its mean MASE. No network is
trained, so this takes minutes, not hours; it is how ``DEFAULT_ANCHOR`` was chosen,
on half A only. Half B is for the held-out check and is not to be tuned on.

    PYTHONPATH=src python benchmarks/anchor_choice.py --half A [--kinds monthly,quarterly]
        [--out benchmarks/results/anchor_choice_A]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forecast_quality import HORIZON, m3_groups  # noqa: E402
from lstmlens.data.series import Series  # noqa: E402
from lstmlens.tasks.forecast import ForecastConfig, Forecaster  # noqa: E402
from lstmlens.tasks.forecast_norm import STATISTICAL, statistical_anchor  # noqa: E402

SEASON = {"monthly": 12, "quarterly": 4}


def score(series: Series, season: int) -> dict[str, float]:
    """MASE of seasonal naive and of every statistical anchor from the test origin."""
    h = HORIZON[season]
    values = series.values
    end = Forecaster(ForecastConfig(horizon=h)).split(series).val_end  # the test origin
    truth = values[end : end + h]
    scale = float(np.mean(np.abs(values[season:end] - values[: end - season])))
    naive = values[end - season + np.arange(h) % season]
    row = {"seasonal_naive": float(np.mean(np.abs(truth - naive))) / scale}
    origin = np.array([end])
    for anchor in STATISTICAL:
        try:
            f = statistical_anchor(values, end, origin, h, season, anchor)[0]
        except (ValueError, np.linalg.LinAlgError):  # too short for ETS or ARIMA: Theta
            f = statistical_anchor(values, end, origin, h, season, "theta")[0]
        row[anchor] = float(np.mean(np.abs(truth - f))) / scale
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--half", choices=("A", "B"), required=True)
    parser.add_argument("--kinds", default="quarterly,monthly")
    parser.add_argument("--out", default=None, help="write OUT.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    groups = m3_groups()
    table: dict[str, dict[str, dict[str, float]]] = {}
    started = time.monotonic()
    for kind in args.kinds.split(","):
        rows = [score(s, SEASON[kind]) for s in groups[f"M3 {kind} {args.half}"]]
        sn = np.array([r["seasonal_naive"] for r in rows])
        table[kind] = {}
        print(f"M3 {kind} {args.half}: {len(rows)} series, seasonal naive MASE {sn.mean():.3f}")
        for anchor in STATISTICAL:
            mase = np.array([r[anchor] for r in rows])
            table[kind][anchor] = {
                "beats_sn": float(np.mean(mase < sn)),
                "mase": float(mase.mean()),
            }
            print(f"  {anchor:<12} beats SN {np.mean(mase < sn):5.0%}   MASE {mase.mean():.3f}")
    print(f"wall {time.monotonic() - started:.0f} s")
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
