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
  weights, metrics, checkpoint, plots, HTML, log, leftover temporary files of
  ours and of safetensors); anything else (a user's notes, sub-folders, CSV
  files) is kept;
* a marked folder whose checkpoint has trained nothing (a run stopped in its
  first seconds) is reused like an empty one;
* ``--resume`` needs a usable checkpoint there, and refuses one recorded with
  other options (see :func:`run_spec`); it touches nothing but the lock; ``--force`` with
  ``--resume`` is refused.

A claimed folder is locked (:mod:`lstmlens.train.lock`) until the command ends, so
a second command on the same folder is refused ("in use by another process"), and
a fresh claim writes the checkpoint of a run that has trained nothing yet, so that
a run stopped before its first epoch can be resumed or rerun.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..train import Reporter, TrainConfig, distributed
from ..train.checkpoint import (
    CHECKPOINT_JSON,
    CHECKPOINT_PREVIOUS,
    checkpoint_state,
    clean_stray_files,
    mark_started,
    write_atomic,
)
from ..train.config import OPTIMIZERS
from ..train.lock import LOCK_FILE, acquire_run_lock
from ..train.resume import check_resume, file_identity

__all__ = [
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
    "RESUME_MAY_CHANGE",
    "run_spec",
    "train_config_from_args",
]

RUN_MARKER = ".lstmlens-run"
LOG_FILE = "train.log"
TEMPORARY_PATTERNS = (".*.tmp", ".tmp??????")  # what killed writes leave: ours, safetensors'
RUN_FILE_PATTERNS = (
    "*.json",
    "*.jsonl",
    "*.safetensors",
    "*.png",
    "*.svg",
    "*.html",
    "*.log",
    *TEMPORARY_PATTERNS,
)
#: Options a ``--resume`` may change (``--epochs`` not with ``--schedule cosine``); every
#: other option must be the one the run started with.
RESUME_MAY_CHANGE = (
    "epochs",
    "max_minutes",
    "patience",
    "precision",
    "quiet",
    "threads",
    "nproc",  # (the trainer refuses another world size, naming both)
    "no_lens",
    "baselines",  # scoring only, after training
)
_NOT_OPTIONS = ("func", "command", "action", "out", "force", "resume")
EXIT_INTERRUPTED = 130  # what a command returns when training was stopped by Ctrl-C
VARIANT_HELP = "vanilla, peephole, nig, nfg, nog, niaf, noaf, cifg, fgr"


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


# ------------------------------------------------------------ train options


def add_train_args(parser: argparse.ArgumentParser) -> None:
    """Add the options every ``train`` subcommand takes (DESIGN section 4).

    Model: ``--variant --layers --hidden --dropout``; training: ``--epochs
    --max-minutes --seed --lr --optimizer --weight-decay --schedule --clip
    --patience --precision``; run: ``--quiet --force --resume``. A command that
    wants other defaults calls ``parser.set_defaults(epochs=..., hidden=...)``.
    """
    model = parser.add_argument_group("model")
    model.add_argument("--variant", default="vanilla", help=f"LSTM variant ({VARIANT_HELP})")
    model.add_argument("--layers", type=positive_int, default=1, help="stacked layers (1)")
    model.add_argument("--hidden", type=positive_int, default=64, help="hidden size (64)")
    model.add_argument("--dropout", type=_dropout, default=0.0, help="dropout between layers (0.0)")

    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=positive_int, default=20, help="epochs (20)")
    train.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        metavar="M",
        help="stop at the first epoch end after M minutes, keeping the best model",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
    train.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (0.001)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(adam)")
    train.add_argument(
        "--weight-decay", type=nonnegative_float, default=0.0, help="weight decay (0.0)"
    )
    train.add_argument(
        "--schedule",
        choices=("none", "plateau", "cosine"),
        default="none",
        help="learning-rate schedule: halve on a val_loss plateau, or cosine decay (none)",
    )
    train.add_argument(
        "--clip",
        type=nonnegative_float,
        default=1.0,
        help="clip the gradient norm to this; 0 turns clipping off (1.0)",
    )
    train.add_argument(
        "--patience",
        type=positive_int,
        default=None,
        help="early stopping after this many epochs without a lower validation loss (off)",
    )
    train.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="compute precision (fp32)"
    )

    add_threads_arg(parser)
    from .launch import add_nproc_arg

    add_nproc_arg(parser)
    run = parser.add_argument_group("run folder")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--force", action="store_true", help="replace the run in --out")
    may_change = ", ".join("--" + k.replace("_", "-") for k in RESUME_MAY_CHANGE)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out, with the options it was started with; only "
        f"{may_change} may change (--epochs not with --schedule cosine)",
    )


def add_threads_arg(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads while the command runs (``main`` applies it)."""
    parser.add_argument(
        "--threads",
        type=nonnegative_int,
        default=1,
        help="torch CPU threads; 0 keeps torch's default. These small recurrences gain little "
        "from a second thread and lose many-fold when another process shares the cores (1)",
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


# ---------------------------------------------------------------- run folder


def _run_files(folder: Path) -> list[Path]:
    """Top-level regular files of ``folder`` that match :data:`RUN_FILE_PATTERNS`."""
    found = {p for pattern in RUN_FILE_PATTERNS for p in folder.glob(pattern)}
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def _check_world_size(path: Path, state: dict[str, Any] | None) -> None:
    """Refuse to resume on another number of processes than the run was trained on."""
    if state is None or state.get("tensors") is None:
        return
    saved, asked = state.get("world_size") or 1, distributed.ranks().world_size
    if saved != asked:
        raise CLIError(
            f"cannot resume {path}: it was trained on {saved} process(es), this command runs "
            f"{asked}; use --nproc {saved}"
        )


def prepare_run_dir(
    out: str | Path, force: bool = False, resume: bool = False, spec: dict[str, Any] | None = None
) -> Path:
    """Claim ``out`` as a run folder following the rules in the module docstring.

    ``spec`` (:func:`run_spec`) is what the command line asks; with ``resume``
    it must equal the checkpoint's. Returns the folder (created if needed).
    Raises :class:`CLIError` naming the folder when the rules refuse it; nothing
    is deleted in that case.
    """
    path = Path(out)
    if force and resume:
        raise CLIError("--force and --resume cannot be used together")
    if not distributed.ranks().is_main:  # rank 0 claims the run folder; this one is scratch
        path.mkdir(parents=True, exist_ok=True)
        return path
    if path.exists() and not path.is_dir():
        raise CLIError(f"{path} exists and is not a folder")
    if resume:
        if not any((path / n).is_file() for n in (CHECKPOINT_JSON, CHECKPOINT_PREVIOUS)):
            raise CLIError(f"cannot resume: no checkpoint in {path} ({CHECKPOINT_JSON} missing)")
        acquire_run_lock(path)  # before reading: no one else writes it from now on
        clean_stray_files(path, patterns=TEMPORARY_PATTERNS)  # what a killed run left
        state = checkpoint_state(path)
        if spec is not None and state is not None and state.get("tensors") is not None:
            check_resume(state.get("spec") or {}, spec)
        _check_world_size(path, state)
        return path
    others = (
        [p for p in path.iterdir() if p.name not in (RUN_MARKER, LOCK_FILE)]
        if path.is_dir()
        else []
    )
    if others:
        marked = (path / RUN_MARKER).is_file()
        if not force and not (marked and _nothing_trained(path)):
            raise CLIError(
                f"{path} already exists and is not empty; use --force to replace the run in it, "
                "--resume to continue it, or another --out"
            )
        if not marked:
            raise CLIError(
                f"{path} is not an lstmlens run folder (no {RUN_MARKER} file), so --force will not "
                "delete anything in it; choose another --out"
            )
    path.mkdir(parents=True, exist_ok=True)
    acquire_run_lock(path)  # before deleting: never under a process still writing there
    for file in _run_files(path) if others else ():
        file.unlink()
    if not (path / RUN_MARKER).is_file():
        write_atomic(path / RUN_MARKER, lambda tmp: None)
    mark_started(path)
    return path


def _nothing_trained(path: Path) -> bool:
    """True when ``path``'s checkpoint is that of a run stopped before its first epoch ended."""
    try:
        state = checkpoint_state(path)
    except ValueError:
        return False
    return state is not None and state.get("epoch") == 0
