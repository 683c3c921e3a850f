"""``lstmlens longrange adding|copy|order``: race recurrent cells on a long-range task.

Trains each cell of --cells with the same budget (steps, batch, hidden size, learning rate,
seed: the same batches) and prints a Markdown table on stdout: final test loss, accuracy where
it applies, steps to solve and whether the task was solved. Progress goes to stderr. With
--out, the trained cells are saved as a run folder (lstmlens inspect RUN --cell NAME).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import save_json_atomic
from ..tasks.longrange import TASKS, make_task
from ..tasks.longrange_compare import CELLS, FORGET_INITS, CompareConfig, format_table
from ..tasks.longrange_run import race, results_json
from .argtypes import BATCH, EPOCHS, SEED, WINDOW
from .common import (
    CLIError,
    add_deprecated,
    add_device_arg,
    add_model_args,
    add_threads_arg,
    cpu_device,
    nonnegative_float,
    positive_float,
    prepare_run_dir,
    reporter_from_args,
)

__all__ = ["DEFAULTS", "register", "run"]

DEFAULT_CELLS = "rnn,gru,lstm,cifg,nfg"
DEFAULT_MINUTES = 9.5  # the whole race, by default within 10 minutes
#: per task: the length T, the steps per cell and Adam's learning rate
DEFAULTS: dict[str, dict[str, float]] = {
    "adding": {"length": 200, "steps": 3000, "lr": 3e-2},
    "copy": {"length": 100, "steps": 5000, "lr": 1e-2},
    "order": {"length": 100, "steps": 5000, "lr": 1e-2},
}


EXAMPLE = """examples:
  lstmlens longrange adding --length 100 --cells rnn,lstm --max-minutes 3
  lstmlens longrange order --cells lstm,cifg --out runs/order   (then: lstmlens inspect runs/order)"""


def _per_task(key: str) -> str:
    return ", ".join(f"{task} {DEFAULTS[task][key]:g}" for task in DEFAULTS)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``longrange`` to the ``lstmlens`` parser."""
    parser = subparsers.add_parser(
        "longrange",
        help="race RNN, GRU and LSTM variants on the adding, copy-memory or temporal-order task",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", choices=sorted(TASKS), help="the task")
    parser.add_argument(
        "--length",
        type=WINDOW,
        default=None,
        metavar="T",
        help="the gap to bridge (" + _per_task("length") + ")",
    )
    parser.add_argument(
        "--cells",
        default=DEFAULT_CELLS,
        help=f"comma-separated cells to compare ({DEFAULT_CELLS}); any of " + ", ".join(CELLS),
    )
    parser.add_argument(
        "--steps",
        type=EPOCHS,
        default=None,
        help="training steps per cell (" + _per_task("steps") + ")",
    )
    parser.add_argument(
        "--batch-size",
        type=BATCH,
        default=CompareConfig.batch_size,
        help="sequences per step (%(default)s)",
    )
    add_deprecated(parser, "--batch", "--batch-size", "batch_size", type=BATCH)
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="Adam learning rate (" + _per_task("lr") + ")",
    )
    parser.add_argument(
        "--clip",
        type=nonnegative_float,
        default=CompareConfig.clip_norm,
        help=f"gradient norm clip, 0 for none ({CompareConfig.clip_norm})",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (0)")
    parser.add_argument(
        "--eval-every",
        type=EPOCHS,
        default=CompareConfig.eval_every,
        help=f"steps between test scores ({CompareConfig.eval_every})",
    )
    parser.add_argument(
        "--test-size",
        type=BATCH,
        default=CompareConfig.test_size,
        help=f"test sequences ({CompareConfig.test_size})",
    )
    parser.add_argument(
        "--relevant",
        type=int,
        choices=(2, 3),
        default=2,
        help="order only: 2 relevant symbols (experiment 6a) or 3 (6b) (2)",
    )
    parser.add_argument(
        "--full-budget",
        action="store_true",
        help="train every cell for all its steps, even once solved",
    )
    parser.add_argument(
        "--max-minutes",
        type=positive_float,
        default=DEFAULT_MINUTES,
        metavar="M",
        help="time limit of the whole race: each cell may use (time left) / (cells left); a cell "
        f"stopped by it reads 'no (time)' ({DEFAULT_MINUTES:g})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the results (with each cell's history) to FILE as JSON",
    )
    add_deprecated(parser, "--json", "--output", "output", type=Path, metavar="FILE")
    parser.add_argument("--out", default=None, help="save the trained cells in this run folder")
    parser.add_argument("--force", action="store_true", help="replace the run in --out")
    add_model_args(parser, ("hidden", "forget_bias"))
    parser.add_argument(
        "--forget-init",
        choices=FORGET_INITS,
        default=CompareConfig.forget_init,
        help="how the LSTMs' forget gates start: constant (add --forget-bias) or chrono "
        "(Tallec & Ollivier 2018: b_f ~ log U(1, T-1), b_i = -b_f) (%(default)s)",
    )
    parser.set_defaults(hidden=CompareConfig.hidden_size, forget_bias=CompareConfig.forget_bias)
    add_device_arg(parser)
    add_threads_arg(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def _cells(text: str) -> list[str]:
    cells = [c.strip().lower() for c in text.split(",") if c.strip()]
    if not cells:
        raise CLIError("--cells: expected a comma-separated list of cells, got nothing")
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise CLIError(f"--cells: unknown cell {unknown[0]!r}; expected any of {', '.join(CELLS)}")
    return cells


def run(args: argparse.Namespace) -> int:
    """Validate, race the cells, print the table (and write ``--output``, ``--out``)."""
    cpu_device(args, "training")
    defaults = DEFAULTS[args.task]
    length = int(defaults["length"]) if args.length is None else args.length
    options = {"relevant": args.relevant} if args.task == "order" else {}
    task = make_task(args.task, length, **options)  # ValueError on a too-short length: exit 2
    cells = _cells(args.cells)
    if args.output is not None and args.output.exists() and args.output.is_dir():
        raise CLIError(f"--output: {args.output} is a folder")
    config = CompareConfig(
        steps=int(defaults["steps"]) if args.steps is None else args.steps,
        batch_size=args.batch_size,
        hidden_size=args.hidden,
        lr=defaults["lr"] if args.lr is None else args.lr,
        clip_norm=args.clip or None,
        forget_bias=args.forget_bias,
        forget_init=args.forget_init,
        eval_every=args.eval_every,
        test_size=args.test_size,
        seed=args.seed,
        stop_when_solved=not args.full_budget,
        total_minutes=args.max_minutes,
    )
    run_dir = None if args.out is None else prepare_run_dir(args.out, force=args.force)
    reporter = reporter_from_args(args)

    def progress(cell: str, record: dict[str, float]) -> None:
        acc = f"  accuracy {100 * record['accuracy']:.1f}%" if "accuracy" in record else ""
        reporter.message(
            f"{cell:>8} step {int(record['step']):>6}  train {record['train_loss']:.4g}  "
            f"test {record['test_loss']:.4g}{acc}  {record['seconds']:.0f}s"
        )

    results = race(task, options, cells, config, progress, run_dir)  # on --threads threads
    print(format_table(task, results))
    if args.output is not None:
        save_json_atomic(args.output, results_json(task, config, results))
    if run_dir is not None:
        print(f"run saved in {run_dir}")
    return 0
