"""``forecast train`` on many series: one global model (``--id``, several ``--target``s,
``--protocol ltsf``). A thin layer over :mod:`lstmlens.tasks.global_run`.

``forecast train DATA.csv --id COL --date COL --target COL`` (long table) or
``--target A,B`` / ``--target all`` (wide table) trains one segment-wise LSTM
(:mod:`lstmlens.tasks.segment_model`, ``--variant`` any lstmlens variant) on windows of
every series and scores each series' last ``H`` points beside naive and seasonal naive;
``--protocol ltsf --split 0.7,0.1,0.2|ROWS,ROWS,ROWS`` scores every test window on the
z-normalised scale instead. Bad input stops before the run folder is touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..data.panel import read_frame, read_panel, refuse_repeated_dates
from ..tasks.global_run import TrainOptions, run_global, run_ltsf
from ..tasks.ltsf import ltsf_data
from .argtypes import WINDOW
from .common import CLIError, prepare_run_dir

__all__ = ["add_global_args", "refuse_long_without_id", "run_global_train", "wants_global"]

#: Segment lengths tried, longest first, when ``--segment`` is not given.
_SEGMENTS = (48, 24, 12, 8, 6, 4, 3, 2, 1)


def add_global_args(parser: argparse.ArgumentParser) -> None:
    """``--id --segment --protocol --split`` (docs/design.md)."""
    group = parser.add_argument_group("many series")
    group.add_argument("--id", default=None, help="series column of a long table")
    group.add_argument(
        "--segment", type=WINDOW, default=None, help="steps per input segment (a divisor"
        " of --window, the largest of 48, 24, 12, ... by default)"
    )  # fmt: skip
    group.add_argument(
        "--protocol", choices=("ltsf",), default=None, help="the long-horizon benchmark protocol"
    )
    group.add_argument(
        "--split", default="0.7,0.1,0.2", help="ltsf split: fractions or row counts (0.7,0.1,0.2)"
    )


def wants_global(args: argparse.Namespace) -> bool:
    """Many series: ``--id``, a list of targets or ``all``, or ``--protocol``."""
    target = getattr(args, "target", None) or ""
    return bool(getattr(args, "id", None) or getattr(args, "protocol", None)
                or target == "all" or "," in target)  # fmt: skip


def refuse_long_without_id(args: argparse.Namespace) -> None:
    """One ``--target`` without ``--id`` on a file whose dates repeat: a long table read as
    one series. Refused with the hint ``--id`` (``ValueError``)."""
    if args.data is None or not Path(args.data).is_file():
        return
    frame, _ = read_frame(Path(args.data), args.sep, args.decimal, args.date)
    taken = {args.target, *getattr(args, "covariates", ())} - {None}
    refuse_repeated_dates(frame, args.date, str(args.data), taken)


def run_global_train(args: argparse.Namespace) -> int:
    """Read the panel, check it, claim the run folder, train, score, print the summary."""
    if args.data is None or args.target is None:
        raise CLIError("many series need DATA.csv and --target (COL, COL1,COL2 or all)")
    unsupported = [o for o, v in (("--future-covariates", getattr(args, "future_covariates", ())),
                                  ("--calendar", getattr(args, "calendar", False))) if v]  # fmt: skip
    if unsupported:
        raise CLIError(f"{', '.join(unsupported)}: one series only, not yet for many series")
    if args.id is None and args.target != "all" and "," not in args.target and not args.protocol:
        raise CLIError("--target names one column: give --id for a long table")
    segment = args.segment or next(s for s in _SEGMENTS if args.window % s == 0)
    if args.window % segment:
        raise CLIError(f"--segment {segment} must divide --window {args.window}")
    panel = read_panel(args.data, args.target, args.id, args.date, args.fill, args.sep,
                       args.decimal)  # fmt: skip
    if args.protocol:
        ltsf_data(panel, args.window, args.horizon, args.split)  # refuses a bad split early
    else:
        panel.drop_short(args.window + 3 * args.horizon)  # none long enough: refused here
    net = {"segment": segment, "hidden_size": args.hidden, "cell": "lstm",
           "variant": args.variant, "num_layers": args.layers, "dropout": args.dropout,
           "channels": 0 if args.id else len(panel)}  # fmt: skip
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size or 256, lr=args.lr,
                           patience=args.patience or 5, max_minutes=args.max_minutes,
                           seed=args.seed)  # fmt: skip
    run_dir = prepare_run_dir(args.out, force=args.force)
    say = (lambda _: None) if args.quiet else print
    say(f"{len(panel)} series from {args.data} ({panel.lengths.min()}..{panel.lengths.max()} "
        f"points); one global model, segments of {segment}")  # fmt: skip
    for note in panel.notes:
        say(note)
    torch.manual_seed(args.seed)
    if args.protocol:
        metrics = run_ltsf(panel, run_dir, args.window, args.horizon, args.split, net, options,
                           say)  # fmt: skip
        print(f"ltsf test ({metrics['test_windows']} windows): model MSE "
              f"{metrics['model']['mse']:.4f} MAE {metrics['model']['mae']:.4f}; repeat last "
              f"value MSE {metrics['baselines']['naive']['mse']:.4f}")  # fmt: skip
    else:
        metrics = run_global(panel, run_dir, args.window, args.horizon, args.season, net,
                             options, say)  # fmt: skip
        rows = {"model": metrics["model"], **metrics["baselines"]}
        for name, row in rows.items():
            print(f"{name:<16} MAE {row['mae']:.4g}  sMAPE {row['smape']:.2f}  "
                  f"MASE {row['mase']:.3f}")  # fmt: skip
    print(f"saved in {run_dir}")
    return 0
