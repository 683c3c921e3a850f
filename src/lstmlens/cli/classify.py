"""``lstmlens classify train|predict``: sequence classification from a CSV (or the digits).

classify train [DATA.csv] reads numeric sequences from a long-format CSV (--id --time
--label [--features]) or texts (--text --label); with no file, scikit-learn's bundled
8x8 digits read row by row. It trains an LSTM, scores the held-out test split (accuracy,
macro-F1, confusion matrix) and saves the run. classify predict RUN DATA.csv prints (or
writes) the predicted class and the class probabilities of every sequence in DATA.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..tasks.classify import POOLINGS
from ..tasks.classify_report import predictions_csv
from ..tasks.classify_run import (
    ClassifyOptions,
    DataSpec,
    load_classifier,
    prepare_classifier,
)
from ..train.distributed import check_share
from .argtypes import BATCH, EMBED, VOCAB, WINDOW
from .common import (
    CLIError,
    add_deprecated,
    add_device_arg,
    add_threads_arg,
    add_train_args,
    comma_names,
    cpu_device,
    fraction,
    model_kwargs,
    prepare_run_dir,
    refuse_existing,
    reporter_from_args,
    run_spec,
    train_config_from_args,
)
from .stdout import emit

__all__ = ["register", "run_predict", "run_train"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``classify train`` and ``classify predict`` to the ``lstmlens`` parser."""
    parser = subparsers.add_parser(
        "classify",
        help="classify sequences (numeric or text)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    train = actions.add_parser(
        "train",
        help="train a sequence classifier",
        description="Train an LSTM sequence classifier on a CSV (or the digits).",
        epilog="examples:\n  lstmlens classify train --out runs/digits   (the digits)\n"
        "  lstmlens classify train ecg.csv --id id --time t --label kind --out runs/ecg\n"
        "  lstmlens classify train reviews.csv --text review --label stars --bidirectional",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "data",
        nargs="?",
        default=None,
        metavar="DATA.csv",
        help="the CSV (default: scikit-learn's digits, read row by row)",
    )
    cols = train.add_argument_group("data")
    cols.add_argument("--id", help="numeric: the column naming each sequence")
    cols.add_argument("--time", help="numeric: the column ordering the steps of a sequence")
    cols.add_argument("--label", help="the class column")
    cols.add_argument(
        "--features", type=comma_names, help="numeric: comma-separated feature columns (all others)"
    )
    cols.add_argument("--text", help="text: the column holding each document")
    cols.add_argument(
        "--level",
        choices=("word", "char"),
        default="word",
        help="text: word or character tokens (word)",
    )
    cols.add_argument(
        "--max-vocab", type=VOCAB, default=20000, help="text: vocabulary size (20000)"
    )
    cols.add_argument(
        "--max-tokens",
        type=WINDOW,
        default=400,
        help="text: keep the first N tokens of each text (400)",
    )
    cols.add_argument("--val-fraction", type=fraction, default=0.15, help="(%(default)s)")
    cols.add_argument("--test-fraction", type=fraction, default=0.15, help="(%(default)s)")
    model = train.add_argument_group("classifier")
    model.add_argument(
        "--pooling",
        choices=POOLINGS,
        default="last",
        help="summary: last hidden state or masked mean over steps (last)",
    )
    model.add_argument("--embed-dim", type=EMBED, default=64, help="text: (%(default)s)")
    model.add_argument("--batch-size", type=BATCH, default=32, help="(%(default)s)")
    add_deprecated(model, "--batch", "--batch-size", "batch_size", type=BATCH)
    model.add_argument(
        "--class-weights",
        choices=("none", "balanced"),
        default="none",
        help="weight the loss by inverse class frequency against imbalance (none)",
    )
    train.add_argument("--out", default="runs/classify", help="run folder (%(default)s)")
    add_train_args(train)
    train.set_defaults(func=run_train, epochs=30, lr=3e-3)

    pred = actions.add_parser(
        "predict",
        help="classify the sequences of a CSV with a saved run",
        description="Classify the sequences of a CSV with a saved run.",
        epilog="example:\n  lstmlens classify predict runs/ecg new.csv --output predicted.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pred.add_argument("run", metavar="RUN", help="a run folder of classify train")
    pred.add_argument("data", metavar="DATA.csv", help="sequences read as in training")
    pred.add_argument(
        "--output", type=Path, default=None, help="write the predictions CSV here instead of stdout"
    )
    pred.add_argument("--force", action="store_true", help="replace an existing --output")
    add_device_arg(pred)
    add_threads_arg(pred)
    pred.set_defaults(func=run_predict)


def _spec(args: argparse.Namespace) -> DataSpec:
    from ..tasks.classify_run import data_spec

    columns = {k: getattr(args, k) for k in ("id", "time", "label", "features", "text")}
    return data_spec(args.data, args.level, args.max_vocab, args.max_tokens, **columns)


def run_train(args: argparse.Namespace) -> int:
    """Check the data, claim the run folder, train, and print the test scores."""
    spec = _spec(args)
    cpu_device(args, "training")
    options = ClassifyOptions(
        pooling=args.pooling,
        embed_dim=args.embed_dim,
        batch_size=args.batch_size,
        class_weights=args.class_weights,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        **model_kwargs(args),
    )
    config = train_config_from_args(args)
    prepared = prepare_classifier(spec, options, config)  # bad input stops here: nothing written
    check_share(len(prepared.task.train), "training sequences")
    resume_spec = run_spec(args, files=("data",))  # what --resume must match
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume, spec=resume_spec)
    reporter = reporter_from_args(args, run_dir)
    metrics = prepared.fit(run_dir, reporter, resume=args.resume, spec=resume_spec)
    sizes = metrics["sizes"]
    print(
        f"test accuracy {metrics['test_accuracy']:.4f}  macro-F1 {metrics['test_macro_f1']:.4f}"
        f"  ({sizes['test']} test sequences, {len(metrics['classes'])} classes; "
        f"best epoch {metrics['best_epoch']})"
    )
    print(f"saved to {run_dir}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Load the run, classify DATA.csv, write the predictions CSV."""
    refuse_existing(args.output, args.force)
    run = Path(args.run)
    if not run.is_dir():
        raise CLIError(f"{run}: no such run folder")
    cpu_device(args, "classify predict")
    model, config = load_classifier(run)
    text, right, n = predictions_csv(model, config, args.data)
    emit(text, args.output)
    if right is not None:
        print(f"accuracy {right:.4f} on {n} labelled sequences", file=sys.stderr)
    return 0
