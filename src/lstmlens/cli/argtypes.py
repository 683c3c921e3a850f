"""argparse types: numbers in a range, probabilities, comma-separated lists, and bounds:
every number the command line takes has a floor and a cap.

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
    "comma_names",
    "dropout",
    "fraction",
    "levels",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "season",
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


def dropout(text: str) -> float:
    value = _number(text, float, "a probability in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a fraction strictly between 0 and 1."""
    value = _number(text, float, "a fraction in (0, 1)")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}")
    return value


def comma_names(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated names (``a,b``), blanks dropped, at least one."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def levels(text: str) -> tuple[float, ...]:
    """argparse type: increasing quantile levels in (0, 1) such as ``0.1,0.5,0.9``."""
    expected = f"expected increasing levels in (0, 1) such as 0.1,0.5,0.9, got {text!r}"
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if any(not 0 < q < 1 for q in values) or any(a >= b for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(expected)
    return values


def season(text: str) -> int:
    """argparse type: a seasonal period of at least 2 steps."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected a season of at least 2 steps, got {text!r}")
    return value
