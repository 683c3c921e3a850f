"""``lstmlens forecast train|predict|backtest``: forecast a series from a CSV with an LSTM.

forecast train [DATA.csv] reads the series (no file: statsmodels' weekly Mauna Loa co2, its
59 gaps filled), trains on the oldest rows, keeps the weights with the lowest validation loss
and scores the last rows (the test part) against naive, seasonal naive, drift, ETS and ARIMA
forecasts from the same origins. forecast predict RUN forecasts the steps after the end of
the data; forecast backtest repeats train-and-score over k rolling test blocks.

The work is done by lstmlens.tasks.forecast_run; this module parses and prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..io import save_json_atomic
from ..tasks.baselines import BASELINES
from ..tasks.forecast_norm import ANCHORS
from ..train.distributed import check_share
from .argtypes import BATCH, FOLDS, MEMBERS, ROWS, STEPS, WINDOW, cap_note
from .common import (
    ALL_MODEL_OPTIONS,
    CLIError,
    add_command,
    add_deprecated,
    add_device_arg,
    add_threads_arg,
    add_train_args,
    comma_names,
    cpu_device,
    levels,
    model_kwargs,
    prepare_run_dir,
    print_result,
    refuse_existing,
    reporter_from_args,
    run_spec,
    season,
    train_config_from_args,
)
from .forecast_global import (
    add_global_args,
    is_global_run,
    refuse_long_without_id,
    run_global_backtest,
    run_global_predict,
    run_global_train,
    wants_global,
)
from .stdout import emit

__all__ = ["register", "run_backtest", "run_predict", "run_train"]

#: Defaults of every forecast training (the demo runs exactly these on co2).
TRAIN_DEFAULTS = {"epochs": 200, "lr": 3e-3, "hidden": 32, "max_minutes": 2.0, "patience": 20}
#: The model options a forecaster takes (it reads each window forwards only).
MODEL = tuple(o for o in ALL_MODEL_OPTIONS if o != "bidirectional")
TRAIN_EXAMPLE = """example:
  lstmlens forecast train sales.csv --target units --date day --window 30 --horizon 7 --out runs/sales
  lstmlens forecast train --out runs/demo   (the co2 default)"""
PREDICT_EXAMPLE = """example:
  lstmlens forecast predict runs/sales --steps 14 --output next.csv
  lstmlens forecast predict runs/sales --data sales_and_promos.csv   (with --future-covariates:
    the file's rows after the last target value hold them, the target left blank)"""
BACKTEST_EXAMPLE = "example:\n  lstmlens forecast backtest sales.csv --target units --folds 3"


def _add_data_args(parser: argparse.ArgumentParser) -> None:
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
    data.add_argument(
        "--covariates",
        type=comma_names,
        default=(),
        help="past-only input columns: a,b (held at their last value when a forecast rolls)",
    )
    data.add_argument(
        "--future-covariates",
        type=comma_names,
        default=(),
        metavar="COLS",
        help="columns known in advance (holidays, promotions): predict reads them from the "
        "rows after the last target value",
    )
    data.add_argument(
        "--calendar",
        action="store_true",
        help="calendar features of the dates (month, day of week, hour, ... by frequency)",
    )
    data.add_argument(
        "--fill", choices=("interpolate",), default=None, help="fill missing values linearly"
    )
    _add_dialect_args(data)


def _add_dialect_args(group: Any, of: str = "") -> None:
    group.add_argument("--sep", default=None, help=f"field separator{of}: , ; tab | (detected)")
    group.add_argument(
        "--decimal", choices=(".", ","), metavar="MARK", help=f"decimal mark{of}: . or , (detected)"
    )


def _baselines(text: str) -> tuple[str, ...]:
    from ..tasks.baselines import parse_baselines

    try:
        return parse_baselines(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_task_args(parser: argparse.ArgumentParser) -> None:
    task = parser.add_argument_group("forecast")
    task.add_argument(
        "--window",
        type=WINDOW,
        default=None,
        help=cap_note("past steps read (3 seasons, or 30)", WINDOW),
    )
    task.add_argument(
        "--horizon", type=STEPS, default=1, help=cap_note("steps forecast (%(default)s)", STEPS)
    )
    task.add_argument(
        "--mode",
        choices=("direct", "recursive"),
        default="direct",
        help="H outputs at once, or one step fed back H times (%(default)s)",
    )
    task.add_argument(
        "--quantiles",
        type=levels,
        default=None,
        help="pinball loss and calibrated intervals (0.1,0.5,0.9)",
    )
    task.add_argument(
        "--log", action="store_true", default=None, help="model log(y) (default: when y > 0)"
    )
    task.add_argument(
        "--anchor",
        choices=tuple(a for a in ANCHORS if a != "none"),
        default=None,
        help="what the network corrects (default theta_arima: the mean of Theta and ARIMA;"
        " ets_theta: of ETS and Theta; many series take theta, ets or ets_theta)",
    )
    task.add_argument(
        "--members", type=MEMBERS, default=None,
        help="LSTMs in the seed ensemble (3; many series: 1, the median of K otherwise)",
    )  # fmt: skip
    task.add_argument(
        "--no-deseasonalise", action="store_true", help="keep the season in the inputs"
    )
    task.add_argument(
        "--no-calibrate", action="store_true", help="intervals straight from the quantile head"
    )
    task.add_argument(
        "--no-fallback",
        action="store_true",
        help="keep the network's correction even when it does not beat its anchor on validation",
    )
    task.add_argument(
        "--absolute",
        action="store_true",
        help="feed and predict scaled levels instead of changes from the last value",
    )
    task.add_argument("--season", type=season, default=None, help="seasonal period (detected)")
    task.add_argument(
        "--baselines",
        metavar="LIST",
        type=_baselines,
        default=BASELINES,
        help=f"baselines to score: a list of {','.join(BASELINES)}, or none (all)",
    )
    task.add_argument("--val", type=ROWS, default=None, help="validation rows (10%%)")
    task.add_argument(
        "--test-origins",
        type=FOLDS,
        default=1,
        help="k: test on the last k x H rows, from k origins (1)",
    )
    task.add_argument("--test", type=ROWS, default=None, help="test rows (k x H)")
    task.add_argument(
        "--batch-size",
        type=BATCH,
        default=None,
        help="windows per step (64)",
    )
    add_deprecated(task, "--batch", "--batch-size", "batch_size", type=BATCH)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``forecast train``, ``forecast predict`` and ``forecast backtest``."""
    parser = subparsers.add_parser(
        "forecast",
        help="forecast a time series (CSV or the co2 default)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    train = add_command(
        actions, "train", "train, score against baselines, save the run", TRAIN_EXAMPLE
    )
    _add_data_args(train)
    _add_task_args(train)
    add_global_args(train)
    train.add_argument("--out", default="runs/forecast", help="run folder (%(default)s)")
    train.add_argument("--no-lens", action="store_true", help="skip RUN/lens.html (the gates)")
    add_train_args(train, MODEL)
    train.set_defaults(func=run_train, **TRAIN_DEFAULTS)

    pred = add_command(
        actions, "predict", "forecast past the end of the data with a run", PREDICT_EXAMPLE
    )
    pred.add_argument("run", metavar="RUN", help="a run folder of forecast train")
    pred.add_argument(
        "--data",
        default=None,
        help="the series, then the future rows of known-future covariates (default: the "
        "training data)",
    )
    pred.add_argument(
        "--steps", type=STEPS, default=None, help=cap_note("steps (the horizon)", STEPS)
    )
    pred.add_argument("--output", type=Path, default=None, help="write the CSV here, not stdout")
    pred.add_argument("--force", action="store_true", help="replace an existing --output")
    _add_dialect_args(pred, " of --data")
    add_device_arg(pred)
    add_threads_arg(pred)
    pred.set_defaults(func=run_predict)

    back = add_command(
        actions, "backtest", "rolling-origin evaluation over k folds", BACKTEST_EXAMPLE
    )
    _add_data_args(back)
    _add_task_args(back)
    add_global_args(back)
    back.add_argument(
        "--folds", type=FOLDS, default=3, help=cap_note("test blocks (%(default)s)", FOLDS)
    )
    back.add_argument(
        "--output", type=Path, default=None, help="also write the results as JSON here"
    )
    add_train_args(back, MODEL, resume=False)
    back.set_defaults(func=run_backtest, **TRAIN_DEFAULTS)


def _spec(args: argparse.Namespace) -> dict:
    from ..tasks.forecast_run import data_spec

    return data_spec(
        args.data,
        args.target,
        args.date,
        tuple(args.covariates),
        args.fill,
        args.sep,
        args.decimal,
        tuple(args.future_covariates),
        args.calendar,
    )


def _forecast_config(args: argparse.Namespace):
    from ..tasks.forecast import ForecastConfig

    decided = {"window": args.window, "quantiles": args.quantiles, "log": args.log}
    return ForecastConfig(
        **{k: v for k, v in decided.items() if v is not None},  # None: the library decides
        horizon=args.horizon,
        mode=args.mode,
        test_origins=args.test_origins,
        anchor=args.anchor,
        members=args.members or 3,
        deseasonalise=False if args.no_deseasonalise else None,
        calibrate=not args.no_calibrate,
        fallback=not args.no_fallback,
        relative=not args.absolute,
        batch_size=args.batch_size,
        val_size=args.val,
        test_size=args.test,
        season=args.season,
        **model_kwargs(args),
    )


def run_train(args: argparse.Namespace) -> int:
    """Validate everything, claim the run folder, train, score, save, print the table."""
    from ..tasks.forecast_run import prepare_forecast

    if wants_global(args):  # many series: one global model (issue 12)
        return run_global_train(args)
    refuse_long_without_id(args)
    cpu_device(args, "training")
    train = train_config_from_args(args)
    prepared = prepare_forecast(_spec(args), _forecast_config(args), train, args.baselines)
    windows = prepared.training_windows()
    check_share(windows, "training windows")
    check_share(prepared.forecaster.config.batch_for(windows), "windows per batch")
    options = run_spec(args, files=("data",))  # what --resume must match
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume, spec=options)
    reporter = reporter_from_args(args, run_dir)
    print(prepared.description)
    result = prepared.fit(run_dir, reporter, args.resume, lens=not args.no_lens, spec=options)
    return print_result(result)


def run_predict(args: argparse.Namespace) -> int:
    """Load the run, read the data, forecast ``--steps`` past its end, write the CSV."""
    from ..tasks.forecast_run import forecast_csv

    cpu_device(args, "forecast predict")
    refuse_existing(args.output, args.force)
    run = Path(args.run)
    if not run.is_dir():
        raise CLIError(f"{run}: no such run folder")
    if is_global_run(run):  # many series: one long CSV (issue 12)
        return run_global_predict(args)
    text, steps, series, kinds = forecast_csv(
        run, args.data, args.steps, sep=args.sep, decimal=args.decimal
    )
    for note in (*series.notes, *kinds):
        print(note, file=sys.stderr)
    emit(text, args.output, f"{steps} forecast(s) of {series.name!r} written to {args.output}")
    return 0


def run_backtest(args: argparse.Namespace) -> int:
    """Train and score a fresh model on each of ``--folds`` rolling test blocks."""
    from ..tasks.forecast_eval import metrics_table
    from ..tasks.forecast_run import backtest_forecast, metrics_report

    if wants_global(args):  # many series: a global model per fold (issue 12)
        return run_global_backtest(args)
    cpu_device(args, "training")
    refuse_existing(args.output, args.force)
    spec, train = _spec(args), train_config_from_args(args)

    def show(k: int, fold: dict) -> None:
        print(f"fold {k + 1}/{args.folds}: " + metrics_report(fold).replace("\n", "\n  "))

    result, size = backtest_forecast(
        spec,
        _forecast_config(args),
        train,
        args.folds,
        reporter_from_args(args),
        on_fold=show,
        on_start=print,
        baselines=args.baselines,
    )
    print(f"mean over {args.folds} folds of {size} rows:")
    print(metrics_table({("LSTM" if k == "model" else k): v for k, v in result["mean"].items()}))
    if args.output is not None:
        save_json_atomic(args.output, {**result, "data": spec, "train": dataclasses.asdict(train)})
        print(f"results written to {args.output}")
    return 0
