"""``lstmlens classify train|predict``: sequence classification from a CSV (or the digits).

``classify train [DATA.csv]`` reads numeric sequences from a long-format CSV (``--id --time
--label [--features]``) or texts (``--text --label``); with no file, scikit-learn's bundled
8x8 digits read row by row. It trains an LSTM, scores the held-out test split (accuracy,
macro-F1, confusion matrix) and saves the run. ``classify predict RUN DATA.csv`` prints (or
writes) the predicted class and the class probabilities of every sequence in DATA.csv.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from ..tasks.classify import POOLINGS
from ..tasks.classify_run import (
    ClassifyOptions,
    DataSpec,
    load_classifier,
    predict,
    prepare_classifier,
)
from ..train.checkpoint import write_atomic
from .common import (
    CLIError,
    add_train_args,
    positive_int,
    prepare_run_dir,
    reporter_from_args,
    run_spec,
    train_config_from_args,
)

__all__ = ["register", "run_predict", "run_train"]


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``classify train`` and ``classify predict`` to the ``lstmlens`` parser."""
    parser = subparsers.add_parser(
        "classify",
        help="classify sequences (numeric or text)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    train = actions.add_parser("train", help="train a sequence classifier")
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
    cols.add_argument("--features", help="numeric: comma-separated feature columns (all others)")
    cols.add_argument("--text", help="text: the column holding each document")
    cols.add_argument(
        "--level",
        choices=("word", "char"),
        default="word",
        help="text: word or character tokens (word)",
    )
    cols.add_argument(
        "--max-vocab", type=positive_int, default=20000, help="text: vocabulary size (20000)"
    )
    cols.add_argument(
        "--max-tokens",
        type=positive_int,
        default=400,
        help="text: keep the first N tokens of each text (400)",
    )
    cols.add_argument("--val-fraction", type=_fraction, default=0.15, help="(0.15)")
    cols.add_argument("--test-fraction", type=_fraction, default=0.15, help="(0.15)")
    model = train.add_argument_group("classifier")
    model.add_argument("--bidirectional", action="store_true", help="read both ways")
    model.add_argument(
        "--pooling",
        choices=POOLINGS,
        default="last",
        help="summary: last hidden state or masked mean over steps (last)",
    )
    model.add_argument("--embed-dim", type=positive_int, default=64, help="text: (64)")
    model.add_argument("--batch", type=positive_int, default=32, help="batch size (32)")
    model.add_argument(
        "--class-weights",
        choices=("none", "balanced"),
        default="none",
        help="weight the loss by inverse class frequency against imbalance (none)",
    )
    train.add_argument("--out", default="runs/classify", help="run folder (runs/classify)")
    add_train_args(train)
    train.set_defaults(func=run_train, epochs=30, lr=3e-3)

    pred = actions.add_parser("predict", help="classify the sequences of a CSV with a saved run")
    pred.add_argument("run", metavar="RUN", help="a run folder of classify train")
    pred.add_argument("data", metavar="DATA.csv", help="sequences read as in training")
    pred.add_argument(
        "--output", type=Path, default=None, help="write the predictions CSV here instead of stdout"
    )
    pred.add_argument("--force", action="store_true", help="replace an existing --output")
    pred.set_defaults(func=run_predict)


def _spec(args: argparse.Namespace) -> DataSpec:
    if args.data is None:
        given = [f"--{k}" for k in ("id", "time", "label", "features", "text") if getattr(args, k)]
        if given:
            raise CLIError(f"{', '.join(given)} given without a DATA.csv file")
        return DataSpec()
    if not args.label:
        raise CLIError("--label is needed: the column holding each sequence's class")
    if args.text and (args.id or args.time or args.features):
        raise CLIError(
            "--text (one document per row) cannot be combined with --id/--time/--features"
        )
    if not args.text and not (args.id and args.time):
        raise CLIError("a numeric CSV needs --id and --time (or --text COL for a text CSV)")
    features = None
    if args.features:
        features = [c.strip() for c in args.features.split(",") if c.strip()]
        if not features:
            raise CLIError(
                f"--features: expected comma-separated column names, got {args.features!r}"
            )
    return DataSpec(
        path=args.data,
        id=args.id,
        time=args.time,
        label=args.label,
        features=features,
        text=args.text,
        level=args.level,
        max_vocab=args.max_vocab,
        max_tokens=args.max_tokens,
    )


def run_train(args: argparse.Namespace) -> int:
    """Check the data, claim the run folder, train, and print the test scores."""
    spec = _spec(args)
    options = ClassifyOptions(
        hidden_size=args.hidden,
        num_layers=args.layers,
        variant=args.variant,
        dropout=args.dropout,
        bidirectional=args.bidirectional,
        pooling=args.pooling,
        embed_dim=args.embed_dim,
        batch_size=args.batch,
        class_weights=args.class_weights,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
    )
    config = train_config_from_args(args)
    prepared = prepare_classifier(spec, options, config)  # bad input stops here: nothing written
    options = run_spec(args, files=("data",))  # what --resume must match
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume, spec=options)
    reporter = reporter_from_args(args, run_dir)
    metrics = prepared.fit(run_dir, reporter, resume=args.resume, spec=options)
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
    if args.output is not None and args.output.exists() and not args.force:
        raise CLIError(f"{args.output} exists; use --force to replace it")
    run = Path(args.run)
    if not run.is_dir():
        raise CLIError(f"{run}: no such run folder")
    model, config = load_classifier(run)
    data, probabilities = predict(model, config, args.data)
    classes = data.classes
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["id", "predicted"]
        + (["label"] if data.labels is not None else [])
        + [f"p_{c}" for c in classes]
    )
    best = probabilities.argmax(-1)
    for i, seq_id in enumerate(data.ids):
        row = [seq_id, classes[int(best[i])]]
        if data.labels is not None:
            row.append(classes[int(data.labels[i])])
        writer.writerow(row + [f"{float(p):.6g}" for p in probabilities[i]])
    if args.output is None:
        sys.stdout.write(buffer.getvalue())
    else:
        write_atomic(args.output, lambda tmp: Path(tmp).write_text(buffer.getvalue(), "utf-8"))
    if data.labels is not None:
        right = float((best == data.labels).float().mean())
        print(f"accuracy {right:.4f} on {len(data)} labelled sequences", file=sys.stderr)
    return 0
