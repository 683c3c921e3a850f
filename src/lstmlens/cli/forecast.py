"""``lstmlens forecast train|predict|backtest``: forecast a series from a CSV with an LSTM.

``forecast train [DATA.csv]`` reads the series (no file: statsmodels' weekly Mauna Loa
co2, its 59 gaps filled), trains on the oldest rows, keeps the weights with the lowest
validation loss and scores the last rows (the test part) against naive, seasonal naive,
drift, ETS and ARIMA forecasts from the same origins. The run folder gets config.json,
model.safetensors, metrics.json, forecast.png, training_curve.png, train.log and
lens.html (the gates over the test part; ``--no-lens`` skips it).
``forecast predict RUN`` forecasts the steps after the end of the data; ``forecast
backtest`` repeats train-and-score over k rolling test blocks.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..data.series import Series, from_pandas, read_csv
from ..tasks.baselines import BASELINES, parse_baselines
from ..train import save_json_atomic
from ..train.checkpoint import write_atomic
from ..train.config import TrainConfig
from .common import (
    EXIT_INTERRUPTED,
    LOG_FILE,
    CLIError,
    add_train_args,
    positive_int,
    prepare_run_dir,
    reporter_from_args,
    run_spec,
    train_config_from_args,
)

__all__ = ["register", "run_backtest", "run_predict", "run_series", "run_train"]

DEFAULT_DATA = "co2"
#: Defaults for every forecast training (the demo runs exactly these on co2).
TRAIN_DEFAULTS = {"epochs": 200, "lr": 3e-3, "hidden": 32, "max_minutes": 2.0}


def _levels(text: str) -> tuple[float, ...]:
    expected = f"expected increasing levels in (0, 1) such as 0.1,0.5,0.9, got {text!r}"
    try:
        levels = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if any(not 0 < q < 1 for q in levels) or any(a >= b for a, b in zip(levels, levels[1:])):
        raise argparse.ArgumentTypeError(expected)
    return levels


def _names(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def _season(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected a season of at least 2 steps, got {text!r}")
    return value


def _baselines(text: str) -> tuple[str, ...]:
    try:
        return parse_baselines(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_data_args(parser: argparse.ArgumentParser, with_file: bool = True) -> None:
    if with_file:
        parser.add_argument(
            "data",
            nargs="?",
            default=None,
            metavar="DATA.csv",
            help="the series, one row per step (default: statsmodels' weekly co2)",
        )
    data = parser.add_argument_group("data")
    data.add_argument("--target", help="column to forecast (default: the only value column)")
    data.add_argument(
        "--date", help="date column (default: the first column if it holds dates; '' for none)"
    )
    data.add_argument("--covariates", type=_names, default=(), help="extra input columns: a,b")
    data.add_argument(
        "--fill", choices=("interpolate",), default=None, help="fill missing values linearly"
    )
    data.add_argument("--sep", default=None, help="field separator: , ; tab | (detected)")
    data.add_argument(
        "--decimal", choices=(".", ","), metavar="MARK", help="decimal mark: . or , (detected)"
    )


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    task = parser.add_argument_group("forecast")
    task.add_argument(
        "--window", type=positive_int, default=None, help="past steps read (3 seasons, or 30)"
    )
    task.add_argument("--horizon", type=positive_int, default=1, help="steps forecast (1)")
    task.add_argument(
        "--mode",
        choices=("direct", "recursive"),
        default="direct",
        help="H outputs at once, or one step fed back H times (direct)",
    )
    task.add_argument(
        "--quantiles",
        type=_levels,
        default=None,
        help="pinball loss and calibrated intervals (0.1,0.5,0.9)",
    )
    task.add_argument(
        "--log", action="store_true", default=None, help="model log(y) (default: when y > 0)"
    )
    task.add_argument(
        "--absolute",
        action="store_true",
        help="feed and predict scaled levels instead of changes from the last value",
    )
    task.add_argument("--season", type=_season, default=None, help="seasonal period (detected)")
    task.add_argument(
        "--anchor",
        choices=("level", "seasonal", "ets"),
        default=None,
        help="what the network corrects (level within a season, ets beyond)",
    )
    task.add_argument(
        "--members", type=positive_int, default=3, help="LSTMs in the seed ensemble (3)"
    )
    task.add_argument(
        "--no-deseasonalise", action="store_true", help="keep the season in the inputs"
    )
    task.add_argument(
        "--no-calibrate", action="store_true", help="intervals straight from the quantile head"
    )
    task.add_argument(
        "--baselines",
        metavar="LIST",
        type=_baselines,
        default=BASELINES,
        help=f"baselines to score: a list of {','.join(BASELINES)}, or none (all)",
    )
    task.add_argument("--val", type=positive_int, default=None, help="validation rows (10%%)")
    task.add_argument(
        "--test-origins",
        type=positive_int,
        default=1,
        help="k: test on the last k x H rows, from k origins (1)",
    )
    task.add_argument("--test", type=positive_int, default=None, help="test rows (k x H)")
    task.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        help="windows per step (64)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``forecast train``, ``forecast predict`` and ``forecast backtest``."""
    parser = subparsers.add_parser(
        "forecast",
        help="forecast a time series (CSV or the co2 default)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    epilog = "forecast defaults (they replace the generic ones shown above): " + ", ".join(
        f"--{k.replace('_', '-')} {v:g}" for k, v in TRAIN_DEFAULTS.items()
    )
    train = actions.add_parser(
        "train", help="train, score against baselines, save the run", epilog=epilog
    )
    _add_data_args(train)
    _add_model_args(train)
    train.add_argument("--out", default="runs/forecast", help="run folder (runs/forecast)")
    train.add_argument("--no-lens", action="store_true", help="skip RUN/lens.html (the gates)")
    add_train_args(train)
    train.set_defaults(func=run_train, **TRAIN_DEFAULTS)

    pred = actions.add_parser("predict", help="forecast past the end of the data with a run")
    pred.add_argument("run", metavar="RUN", help="a run folder of forecast train")
    pred.add_argument("--data", default=None, help="the series (default: the training data)")
    pred.add_argument("--steps", type=positive_int, default=None, help="steps (the horizon)")
    pred.add_argument("--output", type=Path, default=None, help="write the CSV here, not stdout")
    pred.add_argument("--force", action="store_true", help="replace an existing --output")
    pred.add_argument("--sep", default=None, help="field separator of --data (as trained)")
    pred.add_argument(
        "--decimal", choices=(".", ","), metavar="MARK", help="decimal mark of --data"
    )
    pred.set_defaults(func=run_predict)

    back = actions.add_parser(
        "backtest", help="rolling-origin evaluation over k folds", epilog=epilog
    )
    _add_data_args(back)
    _add_model_args(back)
    back.add_argument("--folds", type=positive_int, default=3, help="test blocks (3)")
    back.add_argument(
        "--output", type=Path, default=None, help="also write the results as JSON here"
    )
    add_train_args(back)
    back.set_defaults(func=run_backtest, **TRAIN_DEFAULTS)


# ------------------------------------------------------------------- data


def _load_series(spec: dict[str, Any]) -> Series:
    """The series a data spec names (``ValueError`` on any bad input)."""
    if spec["source"] == DEFAULT_DATA:
        from ..data.datasets import load_co2

        return from_pandas(load_co2(), fill="interpolate", source="statsmodels co2")
    return read_csv(
        spec["path"],
        target=spec.get("target"),
        date=spec.get("date"),
        covariates=tuple(spec.get("covariates") or ()),
        fill=spec.get("fill"),
        sep=spec.get("sep"),
        decimal=spec.get("decimal"),
    )


def run_series(
    run: Path,
    forecaster: Any,
    cfg: dict[str, Any],
    data: str | None = None,
    option: str = "--data",
    **dialect: str | None,
) -> Series:
    """The series of a saved run: its training data (``cfg["data"]``), or the CSV ``data``
    read the same way (same target, date, covariates and fill). ``option`` names the
    command's data option in the message when the run records no usable data."""
    spec = cfg.get("data")
    if data is None and (
        not isinstance(spec, dict) or spec.get("source") not in (DEFAULT_DATA, "csv")
    ):
        raise CLIError(f"{run / 'config.json'}: no usable 'data' entry; pass {option}")
    spec = dict(spec) if isinstance(spec, dict) else {}
    if data is not None:
        spec = {**spec, "source": "csv", "path": data}
    spec.update({k: v for k, v in dialect.items() if v is not None})  # sep, decimal
    if spec["source"] == "csv" and spec.get("target") is None:
        spec["target"] = forecaster.target
    return _load_series(spec)


def _data_spec(args: argparse.Namespace) -> dict[str, Any]:
    if args.data is None:
        given = [f"--{k}" for k in ("target", "date", "covariates") if getattr(args, k)]
        if given:
            raise CLIError(f"{', '.join(given)} given without a DATA.csv file")
        return {"source": DEFAULT_DATA}
    return {
        "source": "csv",
        "path": str(Path(args.data).resolve()),
        "target": args.target,
        "date": args.date,
        "covariates": list(args.covariates),
        "fill": args.fill,
        "sep": args.sep,
        "decimal": args.decimal,
    }


def _forecast_config(args: argparse.Namespace) -> Any:
    from ..tasks.forecast import ForecastConfig

    decided = {"window": args.window, "quantiles": args.quantiles, "log": args.log}
    return ForecastConfig(
        **{k: v for k, v in decided.items() if v is not None},  # None: the library decides
        horizon=args.horizon,
        mode=args.mode,
        test_origins=args.test_origins,
        anchor=args.anchor,
        members=args.members,
        deseasonalise=False if args.no_deseasonalise else None,
        calibrate=not args.no_calibrate,
        hidden_size=args.hidden,
        num_layers=args.layers,
        variant=args.variant,
        dropout=args.dropout,
        relative=not args.absolute,
        batch_size=args.batch,
        val_size=args.val,
        test_size=args.test,
        season=args.season,
    )


def _check_model(forecaster: Any, series: Series) -> None:
    """Refuse what would fail only after the run folder is claimed (variant, --log)."""
    from ..tasks.forecast_model import ForecastNet

    if forecaster.config.log and not np.all(series.values > 0):
        raise CLIError(f"--log needs positive values; {series.name!r} has {series.values.min():g}")
    ForecastNet(forecaster.net_config(series))  # an unknown --variant raises ValueError here


def _describe(series: Series) -> str:
    span = f"{series.index[0]} .. {series.index[-1]}"
    if hasattr(series.index[0], "date"):
        span = f"{series.index[0].date()} .. {series.index[-1].date()}"
    freq = f", frequency {series.freq}" if series.freq else ""
    cov = f", covariates {', '.join(series.covariate_names)}" if series.covariate_names else ""
    filled = (
        f"; filled {series.filled} missing values by linear interpolation" if series.filled else ""
    )
    return f"{series.source}: {series.name!r}, {len(series)} rows ({span}{freq}){cov}{filled}"


# ------------------------------------------------------------------ train


def run_train(args: argparse.Namespace) -> int:
    """Validate everything, claim the run folder, train, score, save, print the table."""
    from ..tasks.forecast import Forecaster
    from ..tasks.forecast_eval import evaluate
    from ..tasks.forecast_plots import forecast_figure, save_png, training_curve_figure

    spec = _data_spec(args)
    config = _forecast_config(args)
    train = train_config_from_args(args)
    series = _load_series(spec)  # bad input stops here or just below: nothing written
    forecaster = Forecaster(config)
    split = forecaster.split(series)
    _check_model(forecaster, series)
    options = run_spec(args, files=("data",))  # what --resume must match
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume, spec=options)
    reporter = reporter_from_args(args, run_dir)
    print(_describe(series))
    for note in series.notes:
        print(note)
    reporter.message(
        f"split: train {split.train_end} rows, validation {split.val_size}, test "
        f"{split.test_size}; window {config.window or 'from the season'}, horizon "
        f"{config.horizon} ({config.mode})"
    )
    result = forecaster.fit(
        series, train, split, run_dir, reporter, resume=args.resume, spec=options
    )
    extra = {"data": spec, "train": dataclasses.asdict(train), "best_epoch": result.best_epoch}
    forecaster.save(run_dir, extra)
    if result.stopped == "interrupted":
        print(f"interrupted: the model of epoch {result.best_epoch} is saved in {run_dir}; "
              "continue with --resume")  # fmt: skip
        return EXIT_INTERRUPTED
    ev = evaluate(forecaster, series, split, args.baselines, progress=reporter.message)
    metrics = {
        **ev.metrics,
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
        save_png(
            training_curve_figure(result.history, result.best_epoch), run_dir / "training_curve.png"
        )
    table = _table(ev.metrics)
    with open(run_dir / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(table + "\n")
    print(table)
    best = ev.best_baseline()
    if best is not None:
        model_mae, base_mae = ev.metrics["model"]["mae"], ev.metrics["baselines"][best]["mae"]
        verdict = "beats" if model_mae < base_mae else "does not beat"
        print(f"LSTM MAE {model_mae:.4g} {verdict} the best baseline ({best}, MAE {base_mae:.4g})")
    for name, why in ev.metrics["skipped_baselines"].items():
        print(f"{name} left out: {why}")
    if not args.no_lens:
        from .inspect import forecast_run_lens

        if (lens := forecast_run_lens(forecaster, series, split, run_dir)) is not None:
            print(f"lens page (the gates over the test part): {lens}")
    print(f"run saved in {run_dir}")
    return 0


def _table(metrics: dict[str, Any]) -> str:
    from ..tasks.forecast_eval import metrics_table

    test = metrics["test"]
    head = (
        f"test: {test['rows']} rows ({test['first']} .. {test['last']}), {test['origins']} "
        f"origin(s), horizon {test['horizon']}; MASE scaled by seasonal naive m={test['mase_season']}"
    )
    rows = {"LSTM": metrics["model"], **metrics["baselines"]}
    return head + "\n" + metrics_table(rows, metrics.get("baseline_models"))


# ---------------------------------------------------------------- predict


def run_predict(args: argparse.Namespace) -> int:
    """Load the run, read the data, forecast ``--steps`` past its end, write the CSV."""
    from ..tasks.forecast import Forecaster

    if args.output is not None and args.output.exists() and not args.force:
        raise CLIError(f"{args.output} exists; use --force to replace it")
    run = Path(args.run)
    if not run.is_dir():
        raise CLIError(f"{run}: no such run folder")
    forecaster, cfg = Forecaster.load(run)
    series = run_series(
        run, forecaster, cfg, args.data, "--data", sep=args.sep, decimal=args.decimal
    )
    for note in series.notes:
        print(note, file=sys.stderr)
    steps = args.steps or forecaster.config.horizon
    pred = forecaster.forecast(series, steps)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    index = series.future_index(steps)
    levels = list(pred.levels)
    writer.writerow(
        ["date" if hasattr(index[0], "date") else "step", "forecast"] + [f"q{q:g}" for q in levels]
    )
    for i, label in enumerate(index):
        when = str(label.date()) if hasattr(label, "date") else str(label)
        quant = [] if pred.quantiles is None else [f"{v:.6g}" for v in pred.quantiles[0, i]]
        writer.writerow([when, f"{pred.point[0, i]:.6g}", *quant])
    if args.output is None:
        sys.stdout.write(buffer.getvalue())
    else:
        write_atomic(args.output, lambda tmp: Path(tmp).write_text(buffer.getvalue(), "utf-8"))
        print(f"{steps} forecast(s) of {series.name!r} written to {args.output}")
    return 0


# --------------------------------------------------------------- backtest


def run_backtest(args: argparse.Namespace) -> int:
    """Train and score a fresh model on each of ``--folds`` rolling test blocks."""
    from ..tasks.forecast import Forecaster
    from ..tasks.forecast_eval import backtest, metrics_table

    if args.resume:
        raise CLIError("forecast backtest trains fresh models; --resume does not apply")
    if args.output is not None and args.output.exists() and not args.force:
        raise CLIError(f"{args.output} exists; use --force to replace it")
    spec = _data_spec(args)
    config = _forecast_config(args)
    train: TrainConfig = train_config_from_args(args)
    series = _load_series(spec)
    _check_model(Forecaster(config), series)
    size = config.test_size or config.test_rows
    for k in range(args.folds):  # every fold long enough, before anything is printed
        Forecaster(dataclasses.replace(config, test_size=size)).split(
            series.head(len(series) - (args.folds - k - 1) * size)
        )
    print(_describe(series))
    for note in series.notes:
        print(note)
    reporter = reporter_from_args(args)

    def show(k: int, fold: dict[str, Any]) -> None:
        print(f"fold {k + 1}/{args.folds}: " + _table(fold).replace("\n", "\n  "))

    result = backtest(
        series, config, train, args.folds, size, reporter, on_fold=show, baselines=args.baselines
    )
    print(f"mean over {args.folds} folds of {size} rows:")
    print(metrics_table({("LSTM" if k == "model" else k): v for k, v in result["mean"].items()}))
    if args.output is not None:
        save_json_atomic(args.output, {**result, "data": spec, "train": dataclasses.asdict(train)})
        print(f"results written to {args.output}")
    return 0
