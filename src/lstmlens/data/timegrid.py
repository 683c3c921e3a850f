"""The time column of a series: which column it is, how it parses, its order, its grid.

The time column is the one named most like a time (:data:`DATE_NAMES`, or a name
whose first or last word is date/time/timestamp) wherever it stands, else the first
whose text parses as dates. Whole numbers in it are steps, not nanoseconds. Rows out
of order are sorted and repeated times refused.

A forecaster reads windows of consecutive steps, so its rows must lie on a regular
grid. With a gap in the dates ``pd.infer_freq`` gives up; :func:`regular_grid`
instead tries the frequencies that short gap-free stretches of the dates show
(three and eight consecutive dates at a few places) and keeps the coarsest whose
``date_range`` from the first to the last date contains every date. Integer time
columns are steps: their grid steps by the greatest common divisor of the
differences. A grid on which more than half the points would be missing is not
taken: such dates are irregular, not gappy.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DATE_NAMES",
    "Grid",
    "date_rank",
    "describe_step",
    "find_time_column",
    "first_label",
    "in_order",
    "line_of",
    "on_grid",
    "parse_time",
    "regular_grid",
]

#: Column names taken as the time column when ``date`` is not given, strongest first
#: (a name such as ``order_date`` or ``Date (UTC)`` ranks after these).
DATE_NAMES = (
    "date", "ds", "time", "timestamp", "datetime",
    "period", "month", "week", "day", "year", "quarter", "hour", "step",
)  # fmt: skip
_DATE_WORDS = ("date", "datetime", "timestamp", "time")  # also as a name's first/last word


_PROBES = 24  # places where short stretches of dates are probed for a frequency


@dataclass(frozen=True)
class Grid:
    """A regular index from the first to the last timestamp.

    Attributes:
        index: every grid point, shape ``(G,)`` (``DatetimeIndex`` or integer ``Index``).
        freq: pandas alias of a date grid (``"MS"``, ``"D"``...); ``None`` for steps.
        step: the integer step of a step grid; ``None`` for dates.
        missing: grid points absent from the data (``M <= G / 2``).
    """

    index: pd.Index
    freq: str | None
    step: int | None
    missing: pd.Index


def _alias(freq: object) -> str | None:
    return None if freq is None else str(getattr(freq, "freqstr", freq))


def _infer(index: pd.DatetimeIndex) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas announces changes of return type
        try:
            return _alias(pd.infer_freq(index))
        except (TypeError, ValueError):
            return None


def _candidates(index: pd.DatetimeIndex) -> list[str]:
    """Frequencies of short gap-free stretches of ``index`` (sorted, unique, n >= 3)."""
    found: dict[str, None] = {}
    n = len(index)
    for size in (8, 3):
        if n < size:
            continue
        for start in np.unique(np.linspace(0, n - size, _PROBES).astype(int)):
            freq = _infer(index[start : start + size])
            if freq is not None:
                found[freq] = None
    return list(found)


def _date_grid(index: pd.DatetimeIndex) -> Grid | None:
    if (freq := _infer(index)) is not None:  # regular already: the common case
        return Grid(index, freq, None, index[:0])
    best: pd.DatetimeIndex | None = None
    best_freq = None
    for freq in _candidates(index):
        try:
            grid = pd.date_range(index[0], index[-1], freq=freq)
        except ValueError:
            continue
        if len(grid) > 2 * len(index) or not index.isin(grid).all():
            continue
        if best is None or len(grid) < len(best):
            best, best_freq = grid, freq
    if best is None:
        return None
    return Grid(best, _infer(best) or best_freq, None, best.difference(index))


def _step_grid(index: pd.Index) -> Grid | None:
    values = index.to_numpy(dtype=np.int64)
    step = int(np.gcd.reduce(np.diff(values)))
    grid = pd.Index(np.arange(values[0], values[-1] + step, step), name=index.name)
    if len(grid) > 2 * len(index):
        return None
    return Grid(grid, None, step, grid.difference(index))


def regular_grid(index: pd.Index) -> Grid | None:
    """The grid under a sorted, duplicate-free time index; ``None`` if it is irregular.

    ``index`` is a ``DatetimeIndex`` (at least three dates) or an integer ``Index``
    (at least two steps); anything else has no grid.
    """
    if isinstance(index, pd.DatetimeIndex):
        return _date_grid(index) if len(index) >= 3 else None
    if pd.api.types.is_integer_dtype(index.dtype) and not isinstance(index, pd.RangeIndex):
        return _step_grid(index) if len(index) >= 2 else None
    return None


def describe_step(grid: Grid) -> str:
    """``"MS"`` -> ``"frequency MS"``; step 5 -> ``"step 5"``."""
    return f"frequency {grid.freq}" if grid.freq is not None else f"step {grid.step}"


def first_label(labels: pd.Index) -> str:
    """A timestamp or step as text: dates without the time when it is midnight."""
    label = labels[0]
    if isinstance(label, pd.Timestamp):
        return str(label.date()) if label == label.normalize() else str(label)
    return str(label)


def line_of(frame_row: int) -> int:
    """CSV line number of a data row (line 1 is the header)."""
    return frame_row + 2


def _parse_dates(column: pd.Series) -> pd.DatetimeIndex:
    """Parse a date column; raise naming the first value that is not a date."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" and similar notices
        try:
            dates = pd.to_datetime(column, errors="raise")
        except (ValueError, TypeError, OverflowError):
            dates = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"date column {column.name!r} does not parse as dates: line {line_of(row)} holds "
            f"{str(column.iloc[row])!r}"
        )
    return pd.DatetimeIndex(dates)


def _as_numbers(column: pd.Series) -> pd.Series | None:
    """The column as numbers if every non-blank cell is one, else ``None`` (also for a
    column of pandas dates, which ``to_numeric`` would turn into nanoseconds)."""
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(
        column.dtype
    ):
        return None
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column
    parsed = pd.to_numeric(column, errors="coerce")
    return parsed if parsed.notna().sum() == column.notna().sum() else None


def parse_time(column: pd.Series) -> pd.Index:
    """A time column: whole numbers are steps (an integer ``Index``), anything else dates."""
    numbers = _as_numbers(column)
    if numbers is None:
        return _parse_dates(column)
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"time column {column.name!r} holds {str(column.iloc[row])!r} at line {line_of(row)}: "
            "expected dates or whole-number steps"
        )
    return pd.Index(values.astype(np.int64), name=column.name)


def date_rank(name: str) -> int | None:
    """How strongly a column name says "time" (0 strongest); ``None``: not at all."""
    key = name.strip().lower()
    if key in DATE_NAMES:
        return DATE_NAMES.index(key)
    words = [w for w in re.split(r"[^a-z0-9]+", key) if w]
    if words and (words[0] in _DATE_WORDS or words[-1] in _DATE_WORDS):
        return len(DATE_NAMES)
    return None


def find_time_column(frame: pd.DataFrame, taken: set[str]) -> str | None:
    """The column named most like a time, wherever it stands; else the first one
    (not in ``taken``) whose text parses as dates; else ``None``."""
    free = [c for c in frame.columns if c not in taken]
    named = [(rank, i, c) for i, c in enumerate(free) if (rank := date_rank(c)) is not None]
    if named:
        return min(named)[2]
    for name in free:
        if _as_numbers(frame[name]) is not None:
            continue
        try:
            _parse_dates(frame[name])
        except ValueError:
            continue
        return name
    return None


def _label(label: object) -> str:
    return first_label(pd.Index([label]))


def in_order(
    times: pd.Index, arrays: list[np.ndarray], what: str, where: str, notes: list[str]
) -> tuple[pd.Index, list[np.ndarray]]:
    """Refuse repeated times; sort rows out of time order, saying so in ``notes``."""
    if times.has_duplicates:
        dup = times[times.duplicated()][0]
        hint = (
            f" (time column {times.name!r}; name the right one with --date)" if times.name else ""
        )
        raise ValueError(f"{what} {_label(dup)} appears more than once{where}{hint}")
    if times.is_monotonic_increasing:
        return times, arrays
    if times.is_monotonic_decreasing:
        notes.append("rows run newest first: sorted oldest first")
    else:
        t = times.to_numpy()
        first = int(np.flatnonzero(t[1:] < t[:-1])[0])
        notes.append(
            f"rows are not in time order (line {line_of(first + 1)} is earlier than line "
            f"{line_of(first)}): sorted by {what}"
        )
    order = np.argsort(times.to_numpy(), kind="stable")
    return times[order], [a[order] for a in arrays]


def on_grid(
    times: pd.Index, arrays: list[np.ndarray], fill: str | None, where: str, notes: list[str]
) -> tuple[pd.Index, list[np.ndarray]]:
    """Put the rows on their regular grid; missing timestamps become NaN rows."""
    grid = regular_grid(times)
    if grid is None:
        if isinstance(times, pd.DatetimeIndex) and len(times) >= 3:
            notes.append("the dates are irregular (no frequency fits them): rows are taken as "
                         "consecutive steps and forecasts are numbered by step")  # fmt: skip
        return times, arrays
    gaps = len(grid.missing)
    if not gaps:
        return times, arrays
    first = first_label(grid.missing)
    if fill is None:
        raise ValueError(
            f"{gaps} missing timestamp(s){where} (first {first}; the rows have "
            f"{describe_step(grid)}): the model needs a regular time grid; fill them with "
            "--fill interpolate or add the rows"
        )
    rows = grid.index.get_indexer(times)  # (T,) position of each row on the grid
    spread = []
    for a in arrays:
        full = np.full((len(grid.index), *a.shape[1:]), np.nan)
        full[rows] = a
        spread.append(full)
    notes.append(
        f"{gaps} missing timestamp(s) (first {first}) added on the regular grid "
        f"({describe_step(grid)}) and filled by linear interpolation"
    )
    return grid.index, spread
