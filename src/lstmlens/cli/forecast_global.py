"""``forecast train|predict|backtest`` on many series: one global model (``--id``, several
``--target``s, ``--protocol ltsf``). A thin layer over :mod:`lstmlens.tasks.global_run`.

``forecast train DATA.csv --id COL --date COL --target COL`` (long table) or
``--target A,B`` / ``--target all`` (wide table) trains one segment-wise LSTM
(:mod:`lstmlens.tasks.segment_model`, ``--variant`` any lstmlens variant) on windows of
every series and scores each series' last ``H`` points beside naive, seasonal naive,
ETS and Theta; ``--protocol ltsf --split 0.7,0.1,0.2|ROWS,ROWS,ROWS`` scores every test
window on the z-normalised scale instead. Training checkpoints into the run folder
(``--resume``, Ctrl-C) and runs on ``--nproc N`` processes like every ``train``.
``forecast predict RUN`` writes one long CSV for every series; ``forecast backtest``
trains and scores a fresh global model per rolling fold. Bad input stops before the
run folder is touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..data.panel import read_frame, read_panel, refuse_repeated_dates
from ..io import save_json_atomic
from ..tasks.baselines import BASELINES
from ..tasks.global_anchor import ANCHORS
from ..tasks.global_eval import GLOBAL_BASELINES
from ..tasks.global_run import LOSSES, TrainOptions, is_global_run
from ..tasks.segment_model import CELLS
from ..train.distributed import check_share
from .argtypes import EMBED, WINDOW, comma_names
from .common import (
    CLIError,
    cpu_device,
    prepare_run_dir,
    refuse_existing,
    reporter_from_args,
    run_spec,
    train_config_from_args,
)
from .errors import EXIT_INTERRUPTED
from .stdout import emit

__all__ = ["add_global_args", "is_global_run", "refuse_long_without_id", "run_global_backtest",
           "run_global_predict", "run_global_train", "wants_global"]  # fmt: skip

#: Statistical anchors and blends of the global model (``--anchor``, ``--blend``).
GLOBAL_ANCHORS = tuple(ANCHORS)

#: Segment lengths tried, longest first, when ``--segment`` is not given.
_SEGMENTS = (48, 24, 12, 8, 6, 4, 3, 2, 1)


def add_global_args(parser: argparse.ArgumentParser) -> None:
    """``--id --segment --id-embedding --static --protocol --split`` (docs/design.md)."""
    group = parser.add_argument_group("many series")
    group.add_argument("--id", default=None, help="series column of a long table")
    group.add_argument(
        "--segment", type=WINDOW, default=None, help="steps per input segment (a divisor"
        " of --window, the largest of 48, 24, 12, ... by default)"
    )  # fmt: skip
    group.add_argument(
        "--id-embedding", type=EMBED, default=None, metavar="DIM",
        help="learn a DIM-wide embedding of each series id (off)",
    )  # fmt: skip
    group.add_argument(
        "--static", type=comma_names, default=(), metavar="COLS",
        help="static covariates of a long table: numeric columns constant per series",
    )  # fmt: skip
    group.add_argument(
        "--cell", choices=tuple(CELLS), default="lstm",
        help="recurrent layer of the global model (%(default)s; --variant applies to lstm)",
    )  # fmt: skip
    group.add_argument(
        "--loss", choices=tuple(LOSSES), default="mae",
        help="training loss of the global model on the scaled series (%(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--scaling", choices=("standard", "mean"), default="standard",
        help="per-series scaler: mean and std, or the mean absolute value (%(default)s)",
    )  # fmt: skip
    group.add_argument(
        "--blend", choices=GLOBAL_ANCHORS, default=None,
        help="average the global model's forecasts with this statistical model's, fitted "
        "per series on its training rows (off)",
    )  # fmt: skip
    group.add_argument(
        "--protocol", choices=("ltsf",), default=None, help="the long-horizon benchmark protocol"
    )
    group.add_argument(
        "--split", default="0.7,0.1,0.2", help="ltsf split: fractions or row counts (0.7,0.1,0.2)"
    )


def wants_global(args: argparse.Namespace) -> bool:
    """Many series: ``--id``, a list of targets or ``all``, ``--protocol``, or an option only
    a global model takes (``--static``, ``--id-embedding``)."""
    target = getattr(args, "target", None) or ""
    asked = ("id", "protocol", "static", "id_embedding")
    return any(getattr(args, k, None) for k in asked) or target == "all" or "," in target


def refuse_long_without_id(args: argparse.Namespace) -> None:
    """One ``--target`` without ``--id`` on a file whose dates repeat: a long table read as
    one series. Refused with the hint ``--id`` (``ValueError``)."""
    if args.data is None or not Path(args.data).is_file():
        return
    frame, _ = read_frame(Path(args.data), args.sep, args.decimal, args.date)
    taken = {args.target, *getattr(args, "covariates", ())} - {None}
    refuse_repeated_dates(frame, args.date, str(args.data), taken)


def _read(args: argparse.Namespace):
    """The checked panel and the network options; bad input raises before anything is
    written."""
    if args.data is None or args.target is None:
        raise CLIError("many series need DATA.csv and --target (COL, COL1,COL2 or all)")
    unsupported = [o for o, v in (("--future-covariates", getattr(args, "future_covariates", ())),
                                  ("--calendar", getattr(args, "calendar", False))) if v]  # fmt: skip
    if unsupported:
        raise CLIError(f"{', '.join(unsupported)}: one series only, not yet for many series")
    if args.id is None and args.target != "all" and "," not in args.target and not args.protocol:
        raise CLIError("--target names one column: give --id for a long table")
    if args.window is None:
        raise CLIError("many series need --window (the lookback, a multiple of --segment)")
    if args.anchor is not None and args.anchor not in GLOBAL_ANCHORS:
        raise CLIError(f"--anchor {args.anchor}: one series only; many series take "
                       f"{', '.join(GLOBAL_ANCHORS)}")  # fmt: skip
    if args.protocol and (args.anchor or args.blend):
        raise CLIError("--anchor and --blend: not with --protocol ltsf (its windows are "
                       "scored on the normalised scale)")  # fmt: skip
    segment = args.segment or next(s for s in _SEGMENTS if args.window % s == 0)
    if args.window % segment:
        raise CLIError(f"--segment {segment} must divide --window {args.window}")
    panel = read_panel(args.data, args.target, args.id, args.date, args.fill, args.sep,
                       args.decimal, args.static)  # fmt: skip
    net = {"segment": segment, "hidden_size": args.hidden, "cell": args.cell,
           "variant": args.variant, "num_layers": args.layers, "dropout": args.dropout,
           "channels": 0 if args.id else len(panel),
           "id_embedding": args.id_embedding or 0, "members": args.members or 1}  # fmt: skip
    return panel, net


def _options(args: argparse.Namespace) -> TrainOptions:
    config = train_config_from_args(args)
    return TrainOptions.from_config(config, batch_size=args.batch_size or 256,
                                    patience=args.patience or 5, loss=args.loss)  # fmt: skip


def _seasonal(args: argparse.Namespace) -> dict[str, Any]:
    """Scaling, and the per-series seasonal index as the one-series path does: on when a
    season is given (each series tested, Theta's way), off with --no-deseasonalise; the
    statistical anchor and blend (``--anchor``, ``--blend``)."""
    return {"scaling": args.scaling, "anchor": args.anchor, "blend": args.blend,
            "deseasonalise": bool(args.season) and not args.no_deseasonalise}  # fmt: skip


def _baselines(args: argparse.Namespace) -> tuple[str, ...]:
    return GLOBAL_BASELINES if args.baselines is BASELINES else tuple(args.baselines)


def _data_spec(args: argparse.Namespace) -> dict[str, Any]:
    """What ``forecast predict`` needs to read the series again."""
    return {"path": str(Path(args.data).resolve()), "target": args.target, "id": args.id,
            "date": args.date, "fill": args.fill, "sep": args.sep, "decimal": args.decimal,
            "static": list(args.static)}  # fmt: skip


def _table(metrics: dict[str, Any]) -> list[str]:
    rows = {"model": metrics["model"], **metrics["baselines"]}
    lines = [f"{name:<16} MAE {row['mae']:.4g}  sMAPE {row['smape']:.2f}  MASE {row['mase']:.3f}"
             for name, row in rows.items()]  # fmt: skip
    for name, share in metrics["model"].get("beats", {}).items():
        lines.append(f"model beats {name} on {100 * share:.0f}% of the series")
    return lines


def run_global_train(args: argparse.Namespace) -> int:
    """Read the panel, check it, claim the run folder, train, score, print the summary."""
    from ..tasks.global_run import run_global, run_ltsf
    from ..tasks.ltsf import ltsf_data

    cpu_device(args, "training")
    panel, net = _read(args)
    if args.protocol and args.quantiles:
        raise CLIError("--quantiles: the ltsf protocol scores point forecasts only")
    if args.protocol:  # a bad split, too few windows or series: refused before --out
        windows = len(ltsf_data(panel, args.window, args.horizon, args.split).train)
        check_share(windows, "training windows")
    else:
        kept, _ = panel.drop_short(args.window + 3 * args.horizon)
        check_share(len(kept), "series long enough to train on")
    options = _options(args)
    spec = run_spec(args, files=("data",))  # what --resume must match (checked by the trainer)
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume)
    reporter = reporter_from_args(args, run_dir)
    say = (lambda _: None) if args.quiet else print
    say(f"{len(panel)} series from {args.data} ({panel.lengths.min()}..{panel.lengths.max()} "
        f"points); one global model, segments of {net['segment']}")  # fmt: skip
    for note in panel.notes:
        say(note)
    common = {"resume": args.resume, "spec": spec, "reporter": reporter,
              "extra": {"data": _data_spec(args)}}  # fmt: skip
    if args.protocol:
        metrics = run_ltsf(panel, run_dir, args.window, args.horizon, args.split, net, options,
                           **common)  # fmt: skip
    else:
        metrics = run_global(panel, run_dir, args.window, args.horizon, args.season, net,
                             options, baselines=_baselines(args), quantiles=args.quantiles,
                             **_seasonal(args), **common)  # fmt: skip
    if metrics.get("interrupted"):
        print(f"interrupted: the best model so far is saved in {run_dir}; continue with --resume")
        return EXIT_INTERRUPTED
    if "model" not in metrics:  # a rank > 0 of a distributed run: rank 0 reports
        return 0
    if args.protocol:
        print(f"ltsf test ({metrics['test_windows']} windows): model MSE "
              f"{metrics['model']['mse']:.4f} MAE {metrics['model']['mae']:.4f}; repeat last "
              f"value MSE {metrics['baselines']['naive']['mse']:.4f}")  # fmt: skip
    else:
        for line in _table(metrics):
            print(line)
        for name, why in metrics["skipped_baselines"].items():
            print(f"{name} left out of some series: {why}")
    print(f"saved in {run_dir}")
    return 0


def run_global_predict(args: argparse.Namespace) -> int:
    """``forecast predict RUN`` of a global run: the long CSV of every series."""
    from ..tasks.global_predict import predict_csv

    text, rows, skipped = predict_csv(args.run, args.data, args.steps, sep=args.sep,
                                      decimal=args.decimal)  # fmt: skip
    if skipped:
        print(f"skipped {len(skipped)} series shorter than one window: "
              f"{', '.join(skipped[:10])}", file=sys.stderr)  # fmt: skip
    emit(text, args.output, f"{rows} forecast row(s) written to {args.output}")
    return 0


def run_global_backtest(args: argparse.Namespace) -> int:
    """``forecast backtest`` across series: a fresh global model per rolling fold."""
    from ..tasks.global_backtest import backtest_global

    if args.protocol:
        raise CLIError("forecast backtest scores the last H points of each series; "
                       "--protocol ltsf already tests every window")  # fmt: skip
    cpu_device(args, "training")
    refuse_existing(args.output, args.force)
    panel, net = _read(args)
    panel.trim_end((args.folds - 1) * args.horizon).drop_short(args.window + 3 * args.horizon)
    reporter = reporter_from_args(args)

    def show(k: int, fold: dict[str, Any]) -> None:
        print(f"fold {k + 1}/{args.folds}: {fold['series']} series")
        for line in _table(fold):
            print("  " + line)

    result = backtest_global(panel, args.folds, args.window, args.horizon, on_fold=show,
                             season=args.season, net=net, options=_options(args),
                             baselines=_baselines(args), reporter=reporter,
                             **_seasonal(args))  # fmt: skip
    if not result["folds"]:  # a rank > 0 of a distributed run: rank 0 reports
        return 0
    print(f"mean over {args.folds} folds:")
    for name, row in result["mean"].items():
        print(f"{name:<16} MAE {row['mae']:.4g}  sMAPE {row['smape']:.2f}  MASE {row['mase']:.3f}")
    if args.output is not None:
        save_json_atomic(args.output, {**result, "data": _data_spec(args)})
        print(f"results written to {args.output}")
    return 0
