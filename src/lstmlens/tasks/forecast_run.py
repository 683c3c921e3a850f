"""A forecasting run from start to end: data -> split -> train -> score -> save; predict; backtest.

``prepare_forecast(spec, config, train)`` reads and checks everything (a ``ValueError`` on
bad input, before anything is written); :meth:`PreparedForecast.fit` trains into a run
folder and returns a :class:`ForecastRunResult` whose ``lines`` are what the command
prints. The run folder holds

* ``config.json``: ``task: "forecast"``, ``format_version``, the model (``net``,
  ``forecast``, ``scaler``, ...), the data spec (``data``), the ``train`` config;
* ``model.safetensors``; ``metrics.json`` (the model and every baseline on the test part);
* ``forecast.png``, ``training_curve.png``, ``train.log``, ``lens.html``.

The data spec and its reading live in :mod:`.forecast_data` (re-exported here).
Covariates are past-only (``covariates``),
known in advance (``future_covariates``, whose values for the forecast steps are the rows
after the last target value) or calendar features of the dates (``calendar``); see
:mod:`lstmlens.data.covariates`. ``metrics.json`` says which kind each is.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.calendar import PREFIX
from ..data.covariates import Covariates, future_values
from ..data.series import Series
from ..data.timegrid import first_label
from ..io import LOG_FILE, save_json_atomic, stamp
from ..train import Reporter, TrainConfig
from .baselines import BASELINES
from .forecast import ForecastConfig, Forecaster
from .forecast_data import (
    DEFAULT_DATA,
    TRAIN_DEFAULTS,
    covariate_lines,
    data_spec,
    load_data,
    load_series,
    run_covariates,
    run_data,
    run_series,
)

__all__ = [
    "DEFAULT_DATA",
    "TRAIN_DEFAULTS",
    "ForecastRunResult",
    "PreparedForecast",
    "backtest_forecast",
    "data_spec",
    "describe",
    "forecast_csv",
    "covariate_lines",
    "forecast_frame",
    "inspect_forecast_run",
    "load_data",
    "load_forecast_run",
    "load_series",
    "metrics_report",
    "prepare_forecast",
    "run_covariates",
    "run_data",
    "run_series",
]


def load_forecast_run(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The forecaster and config of a forecast run folder (``lstmlens.load_run``); of a
    many-series run (``kind: "global"``), the :class:`~lstmlens.tasks.global_net.GlobalNet`."""
    from .global_run import is_global_run, load_global

    if is_global_run(run_dir):
        net, _, config = load_global(run_dir)
        return net, config
    return Forecaster.load(run_dir)


def check_model(forecaster: Forecaster, series: Series) -> None:
    """Refuse what would fail only after the run folder is claimed (variant, log)."""
    from .forecast_model import ForecastNet

    if forecaster.config.log and not np.all(series.values > 0):
        raise ValueError(
            f"--log needs positive values; {series.name!r} has {series.values.min():g}"
        )
    ForecastNet(forecaster.net_config(series))  # an unknown variant raises ValueError here


def describe(series: Series) -> str:
    """One line on the series: source, name, rows, span, frequency, covariates, gaps filled."""
    span = f"{series.index[0]} .. {series.index[-1]}"
    if hasattr(series.index[0], "date"):
        span = f"{series.index[0].date()} .. {series.index[-1].date()}"
    freq = f", frequency {series.freq}" if series.freq else ""
    names = [c for c in series.covariate_names if not c.startswith(PREFIX)]  # calendar: below
    cov = f", covariates {', '.join(names)}" if names else ""
    filled = (
        f"; filled {series.filled} missing values by linear interpolation" if series.filled else ""
    )
    return f"{series.source}: {series.name!r}, {len(series)} rows ({span}{freq}){cov}{filled}"


def metrics_report(metrics: dict[str, Any]) -> str:
    """The test part and the metrics table of the model and every baseline."""
    from .forecast_eval import metrics_table

    test = metrics["test"]
    head = (
        f"test: {test['rows']} rows ({test['first']} .. {test['last']}), {test['origins']} "
        f"origin(s), horizon {test['horizon']}; MASE scaled by seasonal naive m={test['mase_season']}"
    )
    rows = {"LSTM": metrics["model"], **metrics["baselines"]}
    return head + "\n" + metrics_table(rows, metrics.get("baseline_models"))


@dataclass
class ForecastRunResult:
    """What a run did: its folder, metrics, the lines to print and any warnings."""

    run_dir: Path
    interrupted: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PreparedForecast:
    """Everything read and checked, nothing written (see :func:`prepare_forecast`)."""

    spec: dict[str, Any]
    series: Series
    forecaster: Forecaster
    split: Any
    train: TrainConfig
    baselines: tuple[str, ...] = BASELINES  # the baselines scored beside the model
    covariates: Covariates = field(default_factory=Covariates)  # which kind each covariate is

    @property
    def description(self) -> str:
        """The series in one line, then what reading it noted (dialect, gaps), one per line,
        then which kind each covariate is."""
        kinds = covariate_lines(self.forecaster, self.covariates)
        return "\n".join([describe(self.series), *self.series.notes, *kinds])

    def fit(
        self,
        run_dir: Path,
        reporter: Reporter,
        resume: bool = False,
        lens: bool = True,
        spec: dict[str, Any] | None = None,
    ) -> ForecastRunResult:
        """Train, score against the baselines, save config, weights, metrics, plots, lens.

        ``spec`` (what the command line asked) is recorded in the checkpoint, and a resume
        must match it."""
        from ..lens.pages import forecast_run_lens
        from .forecast_eval import evaluate
        from .forecast_plots import forecast_figure, save_png, training_curve_figure

        forecaster, series, split, config = (
            self.forecaster,
            self.series,
            self.split,
            self.forecaster.config,
        )
        reporter.message(
            f"split: train {split.train_end} rows, validation {split.val_size}, test "
            f"{split.test_size}; window {config.window or 'from the season'}, horizon "
            f"{config.horizon} ({config.mode})"
        )
        result = forecaster.fit(
            series, self.train, split, run_dir, reporter, resume=resume, spec=spec
        )
        extra = {
            "data": self.spec,
            "train": dataclasses.asdict(self.train),
            "best_epoch": result.best_epoch,
        }
        forecaster.save(run_dir, stamp("forecast", extra))
        if result.stopped == "interrupted":
            line = f"interrupted: the model of epoch {result.best_epoch} is saved in {run_dir}; continue with --resume"
            return ForecastRunResult(run_dir, True, lines=[line])
        ev = evaluate(forecaster, series, split, self.baselines, progress=reporter.message)
        metrics = {
            **ev.metrics,
            "covariates": {
                **self.covariates.to_dict(),
                "held": forecaster.held_note(None, self.covariates.past),  # or None
            },
            "training": {
                "best_epoch": result.best_epoch,
                "best_val_loss": result.best_val_loss,
                "stopped": result.stopped,
                "seconds": result.seconds,
                "epochs_run": len(result.history),
            },
        }
        save_json_atomic(run_dir / "metrics.json", metrics)
        save_png(forecast_figure(series, ev), run_dir / "forecast.png")
        if result.history:
            curve = training_curve_figure(result.history, result.best_epoch)
            save_png(curve, run_dir / "training_curve.png")
        table = metrics_report(ev.metrics)
        with open(run_dir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(table + "\n")
        out = ForecastRunResult(run_dir, False, metrics, [table])
        best = ev.best_baseline()
        if best is not None:
            model_mae, base_mae = ev.metrics["model"]["mae"], ev.metrics["baselines"][best]["mae"]
            verdict = "beats" if model_mae < base_mae else "does not beat"
            out.lines.append(
                f"LSTM MAE {model_mae:.4g} {verdict} the best baseline ({best}, MAE {base_mae:.4g})"
            )
        for name, why in ev.metrics["skipped_baselines"].items():
            out.lines.append(f"{name} left out: {why}")
        if lens:
            page, warning = forecast_run_lens(forecaster, series, split, run_dir)
            if page is not None:
                out.lines.append(f"lens page (the gates over the test part): {page}")
            if warning is not None:
                out.warnings.append(warning)
        out.lines.append(f"run saved in {run_dir}")
        return out


def prepare_forecast(
    spec: dict[str, Any],
    config: ForecastConfig,
    train: TrainConfig,
    baselines: tuple[str, ...] = BASELINES,
    frame: pd.DataFrame | None = None,
) -> PreparedForecast:
    """Read the series (``frame``: the table of a ``"frame"`` spec), build the forecaster,
    split, check: ``ValueError`` on any bad input."""
    series, _, cov = load_data(spec, frame)
    forecaster = Forecaster(config, future=cov.known)
    split = forecaster.split(series)
    check_model(forecaster, series)
    return PreparedForecast(spec, series, forecaster, split, train, baselines, cov)


def forecast_frame(
    forecaster: Forecaster,
    series: Series,
    future: pd.DataFrame | None,
    cov: Covariates,
    steps: int | None = None,
    date: str | None = None,
    where: str = "the data",
) -> pd.DataFrame:
    """The ``steps`` (default H) forecasts after the end of ``series``: a table with the
    date (or step) of each, the point ``forecast`` and one ``q<level>`` column per
    quantile. ``future``: the rows after the last target value, which must hold the
    known-future covariates of :meth:`Forecaster.future_rows` rows (``ValueError``
    naming the columns and the rows needed otherwise; ``where`` names their source)."""
    steps = steps or forecaster.config.horizon
    known = future_values(series, future, cov, forecaster.future_rows(steps), date, where)
    pred = forecaster.forecast(series, steps, known)
    index = series.future_index(steps)
    table = {"date" if isinstance(index, pd.DatetimeIndex) else "step": index.to_numpy()}
    table["forecast"] = pred.point[0]
    for j, q in enumerate(pred.levels):
        assert pred.quantiles is not None
        table[f"q{q:g}"] = pred.quantiles[0, :, j]
    return pd.DataFrame(table)


def forecast_csv(
    run: Path, data: str | None = None, steps: int | None = None, **dialect: str | None
) -> tuple[str, int, Series, list[str]]:
    """Forecast ``steps`` (default: the horizon) past the end of the run's series (or
    ``data``, read with ``dialect``: ``sep``, ``decimal``): ``(CSV text, steps, series,
    notes)`` with a date or step column, the point forecast and one column per quantile;
    ``notes`` say which kind each covariate is and what is held."""
    forecaster, cfg = Forecaster.load(run)
    series, future, cov = run_data(run, forecaster, cfg, data, "--data", **dialect)
    steps = steps or forecaster.config.horizon
    where = data if data is not None else "the run's data (pass --data with the future rows)"
    data_spec = cfg.get("data")
    spec: dict[str, Any] = data_spec if isinstance(data_spec, dict) else {}
    date = spec.get("date") if isinstance(spec.get("date"), str) else None
    table = forecast_frame(forecaster, series, future, cov, steps, date, where)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(table.columns))
    for row in table.itertuples(index=False):
        label = row[0]
        when = first_label(pd.Index([label])) if isinstance(label, pd.Timestamp) else str(label)
        writer.writerow([when, *(f"{v:.6g}" for v in row[1:])])
    return buffer.getvalue(), steps, series, covariate_lines(forecaster, cov, steps)


def backtest_forecast(
    spec: dict[str, Any],
    config: ForecastConfig,
    train: TrainConfig,
    folds: int,
    reporter: Reporter,
    on_fold: Callable[[int, dict[str, Any]], None] | None = None,
    on_start: Callable[[str], None] | None = None,
    baselines: tuple[str, ...] = BASELINES,
    frame: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], int]:
    """Train and score a fresh model on each of ``folds`` rolling test blocks: ``(results,
    test rows per fold)``. ``on_start(line)`` hears the series' description and notes once
    the data is checked; ``frame``: the table of a ``"frame"`` spec."""
    from .forecast_eval import backtest

    series, _, cov = load_data(spec, frame)
    check_model(Forecaster(config, future=cov.known), series)
    size = config.test_size or config.test_rows

    def fits(count: int) -> bool:  # the oldest of ``count`` folds still splits
        rows = len(series) - (count - 1) * size
        try:
            Forecaster(dataclasses.replace(config, test_size=size)).split(series.head(rows))
        except ValueError:
            return False
        return rows > 0

    most = folds if fits(folds) else next((k for k in range(folds - 1, 0, -1) if fits(k)), 0)
    if 0 < most < folds:
        raise ValueError(
            f"backtest: {folds} folds of {size} test rows do not fit in the {len(series)} rows "
            f"of the series; at most {most} fit"
        )
    for k in range(folds):  # every fold long enough, before anything is printed
        Forecaster(dataclasses.replace(config, test_size=size)).split(
            series.head(len(series) - (folds - k - 1) * size)
        )
    if on_start is not None:
        for line in (
            describe(series),
            *series.notes,
            *covariate_lines(Forecaster(config, cov.known), cov),
        ):
            on_start(line)
    result = backtest(
        series, config, train, folds, size, reporter, on_fold, baselines, future=cov.known
    )
    return result, size


def inspect_forecast_run(
    run_dir: Path,
    forecaster: Forecaster,
    config: dict[str, Any],
    html_path: Path,
    *,
    input: str | None = None,
    png_dir: str | None = None,
    max_steps: int = 1000,
    title: str = "",
) -> list[Path]:
    """The lens page of a forecast run over its own series (or the CSV ``input``, read the
    same way): the last ``max_steps`` steps, each with the gates after its window."""
    from ..lens.pages import write_series_lens

    if config.get("kind") == "global":
        raise ValueError(f"inspect: {run_dir} is a many-series run, which has no lens page yet; "
                         "see its forecasts.png and error_ratio.png")  # fmt: skip
    spec = config.get("data")
    if input is None and isinstance(spec, dict) and spec.get("source") == "csv":
        if not Path(str(spec.get("path"))).is_file():
            raise ValueError(
                f"inspect: the run's data {spec.get('path')} is gone; pass --input DATA.csv"
            )
    series = run_series(run_dir, forecaster, config, input, option="--input")
    start = max(0, len(series) - max_steps)
    return write_series_lens(
        forecaster, series, html_path, start=start, png_dir=png_dir, title=title
    )
