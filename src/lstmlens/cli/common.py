"""What every subcommand shares: the user error, the common training options, the run folder.

Run folders. ``prepare_run_dir`` is the only way a command should claim an
``--out`` folder (call it after the inputs are validated, so that bad input
leaves no folder behind). It marks the folder with an empty ``.lstmlens-run``
file. The rules:

* a missing folder, an empty one, or one holding only the marker is used as is;
* any other folder is refused unless ``--force`` or ``--resume``;
* ``--force`` is refused on a folder without the marker (it was not made by
  lstmlens, e.g. ``--out .``); on a marked folder it deletes only the run files
  at its top level, the names matching :data:`RUN_FILE_PATTERNS` (config,
  weights, metrics, checkpoint, plots, HTML, log, leftover temporary files);
  anything else (a user's notes, sub-folders, CSV files) is kept;
* ``--resume`` needs ``checkpoint.json`` and ``checkpoint.safetensors`` there and
  touches nothing; ``--force`` with ``--resume`` is refused.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import write_atomic
from ..train import Reporter, TrainConfig
from ..train.checkpoint import CHECKPOINT_JSON, CHECKPOINT_TENSORS
from ..train.config import OPTIMIZERS

__all__ = [
    "ALL_MODEL_OPTIONS",
    "MODEL_OPTIONS",
    "add_deprecated",
    "add_device_arg",
    "add_model_args",
    "model_kwargs",
    "resolve_device",
    "training_device",
    "add_threads_arg",
    "nonnegative_int",
    "EXIT_INTERRUPTED",
    "LOG_FILE",
    "RUN_FILE_PATTERNS",
    "RUN_MARKER",
    "CLIError",
    "add_train_args",
    "nonnegative_float",
    "positive_float",
    "positive_int",
    "prepare_run_dir",
    "reporter_from_args",
    "train_config_from_args",
]

RUN_MARKER = ".lstmlens-run"
LOG_FILE = "train.log"
RUN_FILE_PATTERNS = (
    "*.json",
    "*.jsonl",
    "*.safetensors",
    "*.png",
    "*.svg",
    "*.html",
    "*.log",
    ".*.tmp",
)
EXIT_INTERRUPTED = 130  # what a command returns when training was stopped by Ctrl-C
VARIANT_HELP = "vanilla, peephole, nig, nfg, nog, niaf, noaf, cifg, fgr"
DEVICES = ("auto", "cpu", "cuda")


class CLIError(Exception):
    """A problem with the user's input; ``main`` prints ``lstmlens: error: MESSAGE``, exits 2."""


# ----------------------------------------------------------- argument types


def _number(text: str, kind: type, name: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(_number(text, int, "an integer >= 1"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(text, float, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(_number(text, int, "an integer >= 0"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _dropout(text: str) -> float:
    value = _number(text, float, "a probability in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), got {text!r}")
    return value


# ------------------------------------------------------------ option vocabulary

#: Every model option a command may offer, in the order help lists them: option -> (argparse
#: keywords, the keyword of the task model it sets). A command names the ones its model allows.
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "variant": {"default": "vanilla", "help": f"LSTM variant: {VARIANT_HELP} (%(default)s)"},
    "layers": {"type": positive_int, "default": 1, "help": "stacked layers (%(default)s)"},
    "hidden": {"type": positive_int, "default": 64, "help": "hidden units (%(default)s)"},
    "dropout": {"type": _dropout, "default": 0.0, "help": "dropout between layers (%(default)s)"},
    "layer_norm": {"action": "store_true", "help": "layer-normalise the gate pre-activations"},
    "zoneout": {"type": _dropout, "default": 0.0, "help": "zoneout probability (%(default)s)"},
    "recurrent_dropout": {
        "type": _dropout,
        "default": 0.0,
        "help": "dropout on the candidate, one mask per sequence (%(default)s)",
    },
    "bidirectional": {"action": "store_true", "help": "read each sequence both ways"},
    "proj_size": {
        "type": nonnegative_int,
        "default": 0,
        "help": "project h to this size (0: none) (%(default)s)",
    },
    "forget_bias": {
        "type": float,
        "default": 0.0,
        "help": "added to the initial forget-gate bias (%(default)s)",
    },
}
#: The model keyword argument (``lstmlens.LSTM``) each option sets.
MODEL_KEYWORDS = {
    "variant": "variant",
    "layers": "num_layers",
    "hidden": "hidden_size",
    "dropout": "dropout",
    "layer_norm": "layer_norm",
    "zoneout": "zoneout",
    "recurrent_dropout": "recurrent_dropout",
    "bidirectional": "bidirectional",
    "proj_size": "proj_size",
    "forget_bias": "forget_bias",
}
ALL_MODEL_OPTIONS = tuple(MODEL_OPTIONS)


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
    return {MODEL_KEYWORDS[d]: getattr(args, d) for d in MODEL_OPTIONS if hasattr(args, d)}


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


def add_device_arg(parser: argparse.ArgumentParser) -> None:
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


def training_device(args: argparse.Namespace) -> str:
    """The device a ``train`` command runs on: :func:`resolve_device`, CPU only for now."""
    device = resolve_device(args)
    if device != "cpu" and getattr(args, "device", "auto") == "cuda":
        raise CLIError("--device cuda: training runs on the CPU in this release (use cpu or auto)")
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
    train.add_argument("--epochs", type=positive_int, default=20, help="epochs (%(default)s)")
    train.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        metavar="M",
        help="stop at the first epoch end after M minutes, keeping the best model",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
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
        type=positive_int,
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
    run = parser.add_argument_group("run folder")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--force", action="store_true", help="replace the run in --out")
    if resume:
        run.add_argument("--resume", action="store_true", help="continue the run in --out")
    else:
        parser.set_defaults(resume=False)


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads while the command runs (``main`` applies it)."""
    parser.add_argument(
        "--threads",
        type=nonnegative_int,
        default=1,
        help="torch CPU threads; 0 keeps torch's default. These small recurrences gain little "
        "from a second thread and lose many-fold when another process shares the cores (%(default)s)",
    )


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` that the options of :func:`add_train_args` describe."""
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


# ---------------------------------------------------------------- run folder


def _run_files(folder: Path) -> list[Path]:
    """Top-level regular files of ``folder`` that match :data:`RUN_FILE_PATTERNS`."""
    found = {p for pattern in RUN_FILE_PATTERNS for p in folder.glob(pattern)}
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def prepare_run_dir(out: str | Path, force: bool = False, resume: bool = False) -> Path:
    """Claim ``out`` as a run folder following the rules in the module docstring.

    Returns the folder (created if needed). Raises :class:`CLIError` naming the
    folder when the rules refuse it; nothing is deleted in that case.
    """
    path = Path(out)
    if force and resume:
        raise CLIError("--force and --resume cannot be used together")
    if path.exists() and not path.is_dir():
        raise CLIError(f"{path} exists and is not a folder")
    if resume:
        missing = [n for n in (CHECKPOINT_JSON, CHECKPOINT_TENSORS) if not (path / n).is_file()]
        if missing:
            raise CLIError(f"cannot resume: no checkpoint in {path} ({', '.join(missing)} missing)")
        return path
    others = [p for p in path.iterdir() if p.name != RUN_MARKER] if path.is_dir() else []
    if others:
        if not force:
            raise CLIError(
                f"{path} already exists and is not empty; use --force to replace the run in it, "
                "--resume to continue it, or another --out"
            )
        if not (path / RUN_MARKER).is_file():
            raise CLIError(
                f"{path} is not an lstmlens run folder (no {RUN_MARKER} file), so --force will not "
                "delete anything in it; choose another --out"
            )
        for file in _run_files(path):
            file.unlink()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / RUN_MARKER).is_file():
        write_atomic(path / RUN_MARKER, lambda tmp: None)
    return path
