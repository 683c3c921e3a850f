"""What every subcommand shares: one option vocabulary, the training options, the reporter.

The model options (:data:`MODEL_OPTIONS`: ``--variant --layers --hidden --dropout
--layer-norm --zoneout --recurrent-dropout --bidirectional --proj-size --forget-bias``) are
defined here once; each command names those its model allows. ``--device``, ``--threads``,
the training options and the run-folder options likewise. Old spellings stay one release as
hidden aliases (:func:`add_deprecated`) that print a one-line note on stderr. The error type,
the argument types and the run-folder rules live in ``errors``, ``types`` and
``run_folder`` and are re-exported here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..train import Reporter, TrainConfig
from ..train.config import OPTIMIZERS
from ..train.resume import file_identity
from .argtypes import (
    EPOCHS,
    FORGET_BIAS,
    HIDDEN,
    LAYERS,
    PROJ,
    SEED,
    THREADS,
    cap_note,
    comma_names,
    dropout,
    fraction,
    levels,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    season,
)
from .errors import EXIT_INTERRUPTED, CLIError
from .run_folder import LOG_FILE, RUN_FILE_PATTERNS, RUN_MARKER, prepare_run_dir

__all__ = [
    "ALL_MODEL_OPTIONS",
    "EXIT_INTERRUPTED",
    "LOG_FILE",
    "MODEL_OPTIONS",
    "RUN_FILE_PATTERNS",
    "RUN_MARKER",
    "CLIError",
    "add_command",
    "add_deprecated",
    "add_device_arg",
    "add_model_args",
    "add_threads_arg",
    "add_train_args",
    "comma_names",
    "fraction",
    "levels",
    "model_kwargs",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "prepare_run_dir",
    "RESUME_MAY_CHANGE",
    "run_spec",
    "print_result",
    "refuse_existing",
    "reporter_from_args",
    "resolve_device",
    "season",
    "train_config_from_args",
    "cpu_device",
]

VARIANT_HELP = "vanilla, peephole, nig, nfg, nog, niaf, noaf, cifg, fgr"
#: Options a ``--resume`` may change (``--epochs`` not with ``--schedule cosine``); every
#: other option must be the one the run started with.
RESUME_MAY_CHANGE = (
    "epochs",
    "max_minutes",
    "patience",
    "precision",
    "quiet",
    "threads",
    "device",
    "nproc",  # (checked against the checkpoint's world size instead)
    "no_lens",
    "baselines",  # scoring only, after training
)
_NOT_OPTIONS = ("func", "command", "action", "out", "force", "resume")
DEVICES = ("auto", "cpu", "cuda")


# ------------------------------------------------------------ option vocabulary

#: Every model option a command may offer, in the order help lists them: dest -> argparse
#: keywords. A command names the ones its model allows (``add_train_args(parser, names)``).
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "variant": {"default": "vanilla", "help": f"LSTM variant: {VARIANT_HELP} (%(default)s)"},
    "layers": {
        "type": LAYERS,
        "default": 1,
        "help": cap_note("stacked layers (%(default)s)", LAYERS),
    },
    "hidden": {
        "type": HIDDEN,
        "default": 64,
        "help": cap_note("hidden units (%(default)s)", HIDDEN),
    },
    "dropout": {"type": dropout, "default": 0.0, "help": "dropout between layers (%(default)s)"},
    "layer_norm": {"action": "store_true", "help": "layer-normalise the gate pre-activations"},
    "zoneout": {
        "type": dropout,
        "default": 0.0,
        "help": "zoneout: probability a unit keeps its previous h and c (%(default)s)",
    },
    "recurrent_dropout": {
        "type": dropout,
        "default": 0.0,
        "help": "dropout on h on its way into W_hh, one mask per sequence (%(default)s)",
    },
    "bidirectional": {"action": "store_true", "help": "read each sequence both ways"},
    "proj_size": {
        "type": PROJ,
        "default": 0,
        "help": cap_note("project h to this size (0: none) (%(default)s)", PROJ),
    },
    "forget_bias": {
        "type": FORGET_BIAS,
        "default": 0.0,
        "help": "added to the initial forget-gate bias (%(default)s)",
    },
}
#: Options whose model keyword (``lstmlens.LSTM``) is not their own name.
_KEYWORDS = {"layers": "num_layers", "hidden": "hidden_size"}
ALL_MODEL_OPTIONS = tuple(MODEL_OPTIONS)


def add_command(
    actions: Any, name: str, help: str, example: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand parser whose help ends with ``example`` (kept as written)."""
    return actions.add_parser(
        name,
        help=help,
        description=description or help[0].upper() + help[1:] + ".",
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def add_model_args(
    parser: argparse.ArgumentParser, options: Sequence[str] = ALL_MODEL_OPTIONS
) -> None:
    """Add the model ``options`` (names of :data:`MODEL_OPTIONS`) in a "model" group."""
    group = parser.add_argument_group("model")
    for dest in options:
        group.add_argument(_flag(dest), dest=dest, **MODEL_OPTIONS[dest])


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The model keyword arguments (``hidden_size=``, ``layer_norm=``, ...) the options set."""
    return {_KEYWORDS.get(d, d): getattr(args, d) for d in MODEL_OPTIONS if hasattr(args, d)}


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores into the new one's ``dest`` with a note on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: Any):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        print(
            f"lstmlens: note: {option_string} is deprecated, use {self.new} "
            "(the old spelling goes in the next release)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def add_deprecated(
    parser: argparse.ArgumentParser | Any, old: str, new: str, dest: str, **kwargs: Any
) -> None:
    """Accept ``old`` as a hidden alias of ``new`` (same ``dest``) for one more release."""
    parser.add_argument(
        old,
        dest=dest,
        action=_Deprecated,
        new=new,
        help=argparse.SUPPRESS,
        default=None,
        **kwargs,
    )


def add_device_arg(parser: argparse._ActionsContainer) -> None:
    """``--device cpu|cuda|auto`` (auto: cuda when available, else cpu)."""
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the model runs: auto takes cuda when available, else cpu (%(default)s)",
    )


def resolve_device(args: argparse.Namespace) -> str:
    """``"cpu"`` or ``"cuda"`` for ``--device``; ``cuda`` without CUDA is a :class:`CLIError`."""
    import torch

    wanted = getattr(args, "device", "cpu") or "cpu"
    available = torch.cuda.is_available()
    if wanted == "cuda" and not available:
        raise CLIError("--device cuda: CUDA is not available here (use --device cpu or auto)")
    return "cuda" if wanted == "cuda" or (wanted == "auto" and available) else "cpu"


def cpu_device(args: argparse.Namespace, what: str) -> str:
    """``"cpu"`` for a command whose model runs on the CPU in this release (training, the
    forecaster, the classifier, the lens): ``auto`` means cpu, ``cuda`` is refused in one line."""
    if resolve_device(args) != "cpu" and getattr(args, "device", "auto") == "cuda":
        raise CLIError(f"--device cuda: {what} runs on the CPU in this release (use cpu or auto)")
    return "cpu"


# ------------------------------------------------------------ train options


def add_train_args(
    parser: argparse.ArgumentParser,
    model: Sequence[str] = ALL_MODEL_OPTIONS,
    resume: bool = True,
) -> None:
    """Add the options every ``train`` subcommand takes (docs/design.md, "Command line").

    Model: ``model`` of :data:`MODEL_OPTIONS` (``--variant --layers --hidden --dropout
    --layer-norm --zoneout --recurrent-dropout --bidirectional --proj-size --forget-bias``);
    training: ``--epochs --max-minutes --seed --lr --optimizer --weight-decay --schedule
    --clip --patience --precision --device --threads``; run: ``--quiet --force --resume``.
    A command that wants other defaults calls ``parser.set_defaults(epochs=..., hidden=...)``
    after this; the help texts read ``%(default)s``, so they show the defaults in force.
    """
    add_model_args(parser, model)
    train = parser.add_argument_group("training")
    train.add_argument(
        "--epochs", type=EPOCHS, default=20, help=cap_note("epochs (%(default)s)", EPOCHS)
    )
    train.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        metavar="M",
        help="stop at the first epoch end after M minutes, keeping the best model (%(default)s)",
    )
    train.add_argument("--seed", type=SEED, default=0, help="random seed (%(default)s)")
    train.add_argument(
        "--lr", type=positive_float, default=1e-3, help="learning rate (%(default)s)"
    )
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(%(default)s)")
    train.add_argument(
        "--weight-decay", type=nonnegative_float, default=0.0, help="weight decay (%(default)s)"
    )
    train.add_argument(
        "--schedule",
        choices=("none", "plateau", "cosine"),
        default="none",
        help="learning-rate schedule: halve on a val_loss plateau, or cosine decay (%(default)s)",
    )
    train.add_argument(
        "--clip",
        type=nonnegative_float,
        default=1.0,
        help="clip the gradient norm to this; 0 turns clipping off (%(default)s)",
    )
    train.add_argument(
        "--patience",
        type=EPOCHS,
        default=None,
        help="early stopping after this many epochs without a lower validation loss (off)",
    )
    train.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="compute precision (%(default)s)",
    )
    add_device_arg(train)
    add_threads_arg(parser)
    from .launch import add_nproc_arg

    add_nproc_arg(parser)
    run = parser.add_argument_group("run folder")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--force", action="store_true", help="replace the run in --out")
    if resume:
        # --nproc is compared on its own (the checkpoint's world size), not as an option
        may_change = ", ".join(
            "--" + k.replace("_", "-") for k in RESUME_MAY_CHANGE if k != "nproc"
        )
        run.add_argument(
            "--resume",
            action="store_true",
            help="continue the run in --out, with the options it was started with; only "
            f"{may_change} may change (--epochs not with --schedule cosine); --nproc must "
            "be the run's",
        )
    else:
        parser.set_defaults(resume=False)


def refuse_existing(output: Path | None, force: bool) -> None:
    """An ``--output`` file that exists is replaced only with ``--force``."""
    if output is not None and output.exists() and not force:
        raise CLIError(f"{output} exists; use --force to replace it")


def print_result(result: Any) -> int:
    """Print a run result's ``lines`` (stdout) and ``warnings`` (stderr); the exit status."""
    for line in result.lines:
        print(line)
    for warning in result.warnings:
        print(f"lstmlens: warning: {warning}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.interrupted else 0


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads while the command runs (``main`` applies it)."""
    parser.add_argument(
        "--threads",
        type=THREADS,
        default=1,
        help=cap_note(
            "torch CPU threads; 0 keeps torch's default. These small recurrences gain little "
            "from a second thread and lose many-fold when another process shares the cores "
            "(%(default)s)",
            THREADS,
        ),
    )


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` that the options of :func:`add_train_args` describe;
    ``--precision bf16`` on a CPU without native bfloat16 is refused here, before anything is
    written (:mod:`lstmlens.precision`)."""
    from ..precision import check_precision

    try:  # training runs on the CPU in this release
        check_precision(args.precision, "cpu", "--precision bf16")
    except ValueError as e:
        raise CLIError(str(e)) from None
    return TrainConfig(
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        schedule=None if args.schedule == "none" else args.schedule,
        clip_norm=args.clip if args.clip > 0 else None,
        patience=args.patience,
        seed=args.seed,
        precision=args.precision,
    )


def reporter_from_args(args: argparse.Namespace, run_dir: Path | None = None) -> Reporter:
    """A stderr :class:`Reporter`, quiet with ``--quiet``, logging to ``run_dir/train.log``."""
    log = None if run_dir is None else Path(run_dir) / LOG_FILE
    return Reporter(quiet=getattr(args, "quiet", False), log_path=log)


# ----------------------------------------------------------------- resume


def run_spec(args: argparse.Namespace, files: Sequence[str] = ()) -> dict[str, Any]:
    """What the command line asks of a run: every option but :data:`RESUME_MAY_CHANGE`.

    The options named in ``files`` are data files, recorded by absolute path and
    SHA-256 (:func:`~lstmlens.train.resume.file_identity`), so that a resume on
    another or an edited file is refused. The result is JSON, recorded in the
    checkpoint and compared by ``--resume``.
    """
    may_change = set(RESUME_MAY_CHANGE)
    if getattr(args, "schedule", None) == "cosine":
        may_change.discard("epochs")  # the schedule's length
    spec = {k: v for k, v in vars(args).items() if k not in may_change and k not in _NOT_OPTIONS}
    for name in files:
        if spec.get(name) is not None:
            spec[name] = file_identity(spec[name])
    return json.loads(json.dumps(spec, default=str))  # paths as strings, tuples as lists
