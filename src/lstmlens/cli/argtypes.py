"""argparse types with bounds: every number the command line takes has a floor and a cap.

``bounded_int(1, MAX_HIDDEN)`` returns a ``type=`` callable that turns text into an
integer in ``[1, MAX_HIDDEN]`` or raises ``argparse.ArgumentTypeError`` with one line
saying what was expected and what came (argparse prefixes the option's name):

    argument --hidden: expected an integer in [1, 8192], got '1000000000'

The caps live in :mod:`lstmlens.limits` (shared with the run-folder schema), and
:func:`cap_note` writes them into the help, so ``--help`` says what is accepted.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..limits import (
    MAX_BATCH,
    MAX_CLASSES,
    MAX_EMBED,
    MAX_EPOCHS,
    MAX_FOLDS,
    MAX_HIDDEN,
    MAX_LAYERS,
    MAX_LENGTH,
    MAX_NPROC,
    MAX_STEPS,
    MAX_THREADS,
    MAX_VOCAB,
    MAX_WINDOW,
)

__all__ = [
    "BATCH",
    "CLASSES",
    "EMBED",
    "EPOCHS",
    "FOLDS",
    "FORGET_BIAS",
    "HIDDEN",
    "LAYERS",
    "LENGTH",
    "MEMBERS",
    "NPROC",
    "PROJ",
    "REPEATS",
    "ROWS",
    "SEED",
    "STEPS",
    "THREADS",
    "VOCAB",
    "WINDOW",
    "bounded_float",
    "bounded_int",
    "cap_note",
]

_MAX_DIGITS = 30  # longer text is no number we take (and int() of 5000 digits is slow)


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]`` (decimal digits, an optional sign)."""
    expected = f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            if len(text.strip()) > _MAX_DIGITS:
                raise ValueError
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = f"integer in [{low}, {high}]"
    parse.high = high  # type: ignore[attr-defined]  # read by cap_note
    return parse


def bounded_float(
    low: float, high: float, *, open_low: bool = False, open_high: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``(`` / ``)`` where open)."""
    expected = f"a number in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:40]!r}") from None
        below = value <= low if open_low else value < low
        above = value >= high if open_high else value > high
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected.removeprefix("a ")
    parse.high = high  # type: ignore[attr-defined]
    return parse


def cap_note(help_text: str, kind: Callable[[str], object]) -> str:
    """``help_text`` with the type's cap added: ``"hidden size (64)"`` -> ``"... (64; at most 8192)"``."""
    high = getattr(kind, "high", None)
    if high is None:
        return help_text
    cap = f"at most {high}"
    if help_text.endswith(")"):
        return f"{help_text[:-1]}; {cap})"
    return f"{help_text} ({cap})"


HIDDEN = bounded_int(1, MAX_HIDDEN)  # --hidden
PROJ = bounded_int(0, MAX_HIDDEN)  # --proj-size (0: none)
LAYERS = bounded_int(1, MAX_LAYERS)  # --layers
EMBED = bounded_int(1, MAX_EMBED)  # --embed, --embed-dim
VOCAB = bounded_int(1, MAX_VOCAB)  # --max-vocab
CLASSES = bounded_int(1, MAX_CLASSES)
WINDOW = bounded_int(1, MAX_WINDOW)  # --window, --seq-len, --length (longrange)
STEPS = bounded_int(1, MAX_STEPS)  # --horizon, predict --steps
LENGTH = bounded_int(1, MAX_LENGTH)  # text generate --length
BATCH = bounded_int(1, MAX_BATCH)  # --batch, --batch-size
EPOCHS = bounded_int(1, MAX_EPOCHS)  # --epochs
FOLDS = bounded_int(1, MAX_FOLDS)  # backtest --folds
THREADS = bounded_int(0, MAX_THREADS)  # --threads (0: torch's default)
NPROC = bounded_int(1, MAX_NPROC)  # --nproc
ROWS = bounded_int(1, 10**9)  # --val, --test rows; --min-count
SEED = bounded_int(0, 2**32 - 1)  # --seed (NumPy's range)
REPEATS = bounded_int(1, 1000)  # bench --repeats
MEMBERS = bounded_int(1, 100)  # forecast --members (a seed ensemble)
FORGET_BIAS = bounded_float(-100.0, 100.0)  # --forget-bias (sigmoid saturates far before)
