"""CSV dialect of a series file: field separator and decimal mark, detected or given.

European spreadsheets write ``date;sales`` and ``1.234,5``; read with the defaults
such a file becomes one column of text. :func:`sniff` looks at the first lines:

- **separator**: the header fixes the number of columns; the separator is the one
  among ``,  ;  tab  |`` that splits the header into at least two fields and every
  sampled line into as many (quotes respected). A header without any of them is a
  one-column file. No candidate, or two equally good ones -> ``ValueError``.
- **decimal mark**: a value like ``12,5`` or ``1.234,5`` is evidence of a decimal
  comma, ``12.5`` or ``1,234.5`` of a decimal point (``1,234`` alone counts for the
  comma only when commas do not separate fields). Both kinds -> ``ValueError``.

:func:`to_numbers` then turns decimal-comma text (``1.234,5``) into ``1234.5``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["SEPARATORS", "Dialect", "sniff", "to_numbers"]

#: Field separators tried, in order of preference.
SEPARATORS = (",", ";", "\t", "|")
_SEP_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_SEP_ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}
_SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 200

_NUM = r"^\s*[+-]?"
_STRONG_COMMA = re.compile(_NUM + r"(\d{1,3}(\.\d{3})+,\d*|\d+,(\d{1,2}|\d{4,}))\s*$")
_WEAK_COMMA = re.compile(_NUM + r"\d{1,3},\d{3}\s*$")  # 1,234: decimal or thousands
_STRONG_POINT = re.compile(_NUM + r"(\d{1,3}(,\d{3})+\.\d*|\d*\.(\d{1,2}|\d{4,}))\s*$")
_COMMA_NUMBER = re.compile(_NUM + r"(\d{1,3}(\.\d{3})+|\d+)(,\d*)?\s*$")


@dataclass(frozen=True)
class Dialect:
    """How a CSV file is written: ``sep`` between fields, ``decimal`` mark in numbers."""

    sep: str = ","
    decimal: str = "."
    trailing: bool = False  # every data line ends with a separator (read with index_col=False)

    @property
    def default(self) -> bool:
        return self.sep == "," and self.decimal == "."

    def describe(self) -> str:
        """E.g. ``"';'-separated, decimal commas"``."""
        mark = "decimal commas" if self.decimal == "," else "decimal points"
        return f"{_SEP_NAMES.get(self.sep, repr(self.sep))}-separated, {mark}"


def _sample(path: Path) -> list[str]:
    """The first complete, non-blank lines of the file."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read(_SAMPLE_BYTES)
        truncated = bool(f.read(1))
    lines = text.splitlines()
    if truncated and lines:
        lines = lines[:-1]  # the last line may be cut
    return [line for line in lines if line.strip()][:_SAMPLE_LINES]


def _fields(lines: list[str], sep: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=sep, quotechar='"'))


def _fits(row: list[str], width: int) -> bool:
    """A row of ``width`` fields, or one more that is empty (a separator ending the line)."""
    return len(row) == width or (len(row) == width + 1 and row[-1] == "")


def _trailing(rows: list[list[str]]) -> bool:
    """Whether every data row ends with a separator (one empty field past the header)."""
    return len(rows) > 1 and all(len(r) == len(rows[0]) + 1 and r[-1] == "" for r in rows[1:])


def _separator(lines: list[str], path: Path) -> str:
    if not lines:
        return ","
    fits: dict[str, int] = {}
    worst: dict[str, tuple[int, int]] = {}  # sep -> (line, fields) of the first misfit
    for sep in SEPARATORS:
        rows = _fields(lines, sep)
        width = len(rows[0])
        if width < 2:
            continue
        bad = next((i for i, row in enumerate(rows) if not _fits(row, width)), None)
        if bad is None:
            fits[sep] = width
        else:
            worst[sep] = (bad + 1, len(rows[bad]))
    if not fits and not worst:
        return ","  # one column: no separator in the header
    if not fits:
        sep, (line, n) = next(iter(worst.items()))
        header = len(_fields(lines[:1], sep)[0])
        raise ValueError(
            f"cannot determine the CSV dialect of {path}: no separator among "
            f"{', '.join(_SEP_NAMES[s] for s in SEPARATORS)} splits every line alike "
            f"(with {_SEP_NAMES[sep]} the header has {header} fields, line {line} has {n}); "
            "give the separator with --sep"
        )
    best = max(fits.values())
    tied = [s for s, w in fits.items() if w == best]
    if len(tied) > 1:
        raise ValueError(
            f"cannot determine the CSV dialect of {path}: both {_SEP_NAMES[tied[0]]} and "
            f"{_SEP_NAMES[tied[1]]} split every line into {best} fields; give --sep"
        )
    return tied[0]


def _decimal(rows: list[list[str]], skip: set[int], sep: str, path: Path) -> str:
    """The decimal mark the value cells use (``skip``: columns not to look at)."""
    comma = point = weak = None
    for line, row in enumerate(rows[1:], start=2):
        for j, cell in enumerate(row):
            if j in skip:
                continue
            if comma is None and _STRONG_COMMA.match(cell):
                comma = (line, cell)
            elif point is None and _STRONG_POINT.match(cell):
                point = (line, cell)
            elif weak is None and _WEAK_COMMA.match(cell):
                weak = (line, cell)
    if comma and point:
        raise ValueError(
            f"cannot determine the CSV dialect of {path}: it mixes decimal commas "
            f"(line {comma[0]}: {comma[1]!r}) and decimal points (line {point[0]}: "
            f"{point[1]!r}); give the mark with --decimal"
        )
    if comma or (weak and not point and sep != ","):
        return ","
    return "."


def sniff(
    path: str | Path,
    sep: str | None = None,
    decimal: str | None = None,
    skip_column: Callable[[str], bool] = lambda name: False,
) -> Dialect:
    """The dialect of the CSV at ``path``; ``sep`` and ``decimal`` override detection.

    ``skip_column(name)`` marks columns (dates) whose cells are no evidence of the
    decimal mark. Raises ``ValueError`` when the dialect cannot be determined.
    """
    path = Path(path)
    if sep is not None:
        sep = _SEP_ALIASES.get(sep, sep)
        if len(sep) != 1 or sep in '"\r\n' or sep.isalnum() or sep == ".":
            raise ValueError(f"--sep must be one character such as ',' ';' tab '|', got {sep!r}")
    if decimal is not None and decimal not in (".", ","):
        raise ValueError(f"--decimal must be '.' or ',', got {decimal!r}")
    lines = _sample(path)
    sep = sep or _separator(lines, path)
    rows = _fields(lines, sep)
    if decimal is None and rows:
        skip = {j for j, name in enumerate(rows[0]) if skip_column(name)}
        decimal = _decimal(rows, skip, sep, path)
    return Dialect(sep, decimal or ".", _trailing(rows))  # ',' and decimal ',': quoted


def to_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimal-comma text cells as dot-decimal text: ``"1.234,5"`` -> ``"1234.5"``.

    Cells that do not look like decimal-comma numbers are left as they are, so that
    later checks quote them unchanged.
    """
    out = frame.copy()
    for name in out.columns:
        col = out[name]
        if col.dtype != object and not pd.api.types.is_string_dtype(col.dtype):
            continue
        text = col.astype("string")
        looks = text.str.match(_COMMA_NUMBER).fillna(False).astype(bool)
        fixed = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        out[name] = col.where(~looks, fixed.str.strip())
    return out
