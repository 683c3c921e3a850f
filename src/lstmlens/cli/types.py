"""argparse types: numbers in a range, probabilities, comma-separated lists.

Each raises ``argparse.ArgumentTypeError`` with what was expected and what came, which the
``lstmlens`` parser turns into one line and exit status 2.
"""

from __future__ import annotations

import argparse
import math

__all__ = [
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
