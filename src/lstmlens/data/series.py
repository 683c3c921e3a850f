"""Time series for forecasting: reading a CSV, missing values, frequency and season.

A :class:`Series` is one target column ``y`` (shape ``(T,)``) plus optional covariate
columns ``X`` (shape ``(T, C)``) on a shared time index (dates, or row numbers when
the file has no date column). Everything downstream (windows, scaling, the model,
the baselines) works on these NumPy arrays in float64.

Reading never guesses silently. The CSV dialect (``;`` separators, decimal commas)
is detected (:mod:`lstmlens.data.dialect`); the time column is the one named like a
date wherever it stands (or the first holding dates); integer time columns are steps.
Rows out of time order are sorted, and timestamps missing from the regular grid
(:mod:`lstmlens.data.timegrid`) are added as missing rows; each of these is said in
``Series.notes``, one line each, for the caller to show. A column that is not
numeric, a time column that does not parse, an undeterminable dialect, or missing
values or timestamps without ``fill="interpolate"`` raise ``ValueError`` with a
message naming the column and the first offending line.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .dialect import sniff, to_numbers
from .timegrid import (
    DATE_NAMES,
    date_rank,
    find_time_column,
    first_label,
    in_order,
    line_of,
    on_grid,
    parse_time,
)

__all__ = [
    "DATE_NAMES",
    "Series",
    "from_pandas",
    "infer_freq",
    "interpolate_missing",
    "read_csv",
    "read_frame",
    "season_from_freq",
]

FILL_METHODS = (None, "interpolate")


@dataclass(frozen=True)
class Series:
    """A target series with optional covariates on one time index.

    Attributes:
        values: target ``y``, shape ``(T,)``, float64 (may hold NaN until filled).
        covariates: extra input columns, shape ``(T, C)``, float64 (``C`` may be 0).
        name: the target column's name.
        covariate_names: names of the ``C`` covariate columns.
        index: ``pd.DatetimeIndex`` when there is a date column, else ``pd.RangeIndex``.
        freq: pandas frequency alias inferred from the dates (``"MS"``, ``"W-SAT"``...),
            or ``None`` (no dates, or irregular dates).
        filled: how many missing values ``fill="interpolate"`` replaced (0 if none).
        source: where the data came from (a path or a dataset name), for reports.
        notes: what reading changed or noticed (dialect, sorting, gaps), one line each.
    """

    values: np.ndarray
    covariates: np.ndarray
    name: str
    covariate_names: tuple[str, ...] = ()
    index: pd.Index = field(default_factory=lambda: pd.RangeIndex(0))
    freq: str | None = None
    filled: int = 0
    source: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.values.ndim != 1:
            raise ValueError(f"Series: expected values of shape (T,), got {self.values.shape}")
        t = len(self.values)
        if self.covariates.shape != (t, len(self.covariate_names)):
            raise ValueError(
                f"Series: expected covariates of shape ({t}, {len(self.covariate_names)}), "
                f"got {self.covariates.shape}"
            )
        if len(self.index) != t:
            raise ValueError(f"Series: index has {len(self.index)} entries, values have {t}")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def features(self) -> np.ndarray:
        """Model inputs per step: ``[y, X]``, shape ``(T, 1 + C)``."""
        return np.column_stack([self.values, self.covariates])

    def missing(self) -> int:
        """Number of missing (NaN) values in the target and covariates together."""
        return int(np.isnan(self.values).sum() + np.isnan(self.covariates).sum())

    def head(self, n: int) -> Series:
        """The first ``n`` steps (everything before position ``n``)."""
        return replace(
            self, values=self.values[:n], covariates=self.covariates[:n], index=self.index[:n]
        )

    def future_index(self, steps: int) -> pd.Index:
        """Index labels of the ``steps`` steps after the end (dates if ``freq`` is known,
        the next integer steps for an integer time column)."""
        if isinstance(self.index, pd.DatetimeIndex) and self.freq is not None and len(self):
            return pd.date_range(self.index[-1], periods=steps + 1, freq=self.freq)[1:]
        if _is_steps(self.index) and len(self):
            labels = self.index.to_numpy(dtype=np.int64)
            step = int(np.gcd.reduce(np.diff(labels))) if len(labels) > 1 else 1
            return pd.Index(labels[-1] + step * np.arange(1, steps + 1), name=self.index.name)
        start = len(self) if not isinstance(self.index, pd.RangeIndex) else self.index.stop
        return pd.RangeIndex(start, start + steps)


def infer_freq(index: pd.Index) -> str | None:
    """Pandas frequency alias of a regular ``DatetimeIndex``; ``None`` when irregular.

    Needs at least three dates; gaps in the dates (rather than NaN values) make it ``None``.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 announces a change of return type
        freq = pd.infer_freq(index)
    if freq is None:
        return None
    return str(getattr(freq, "freqstr", freq))


# Offset class name fragment -> number of steps in the natural season.
_SEASONS = (
    ("SemiMonth", 24),
    ("Month", 12),
    ("Quarter", 4),
    ("Week", 52),
    ("BusinessDay", 5),
    ("Day", 7),
    ("Hour", 24),
    ("Minute", 60),
)


def season_from_freq(freq: str | None) -> int | None:
    """Natural seasonal period of a frequency: monthly 12, quarterly 4, weekly 52 (a year),
    daily 7, business-daily 5, hourly 24, minutely 60; yearly or unknown -> ``None``."""
    if freq is None:
        return None
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return None
    name = type(offset).__name__
    for fragment, season in _SEASONS:
        if fragment in name:
            return season
    return None


def interpolate_missing(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over positions; leading/trailing gaps take the nearest value.

    ``values`` has shape ``(T,)`` or ``(T, C)`` (each column separately). A column that
    is entirely missing cannot be filled and raises ``ValueError``.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    cols = out.reshape(len(out), -1)  # (T, C) view
    pos = np.arange(len(out))
    for j in range(cols.shape[1]):
        col = cols[:, j]
        ok = ~np.isnan(col)
        if not ok.any():
            raise ValueError("interpolate_missing: a column has no values at all")
        if not ok.all():
            col[~ok] = np.interp(pos[~ok], pos[ok], col[ok])
    return out


def _is_steps(index: pd.Index) -> bool:
    """An integer time index read from a column (not the default row numbers)."""
    return pd.api.types.is_integer_dtype(index.dtype) and not isinstance(index, pd.RangeIndex)


def _numeric(column: pd.Series, what: str) -> np.ndarray:
    """A column as float64; blanks become NaN, anything else non-numeric raises."""
    if pd.api.types.is_bool_dtype(column.dtype):
        raise ValueError(f"{what} {column.name!r} is boolean, expected numbers")
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(column, errors="coerce")
    text = column.astype("string").str.strip()
    bad = parsed.isna() & column.notna() & (text != "") & ~text.str.lower().isin(["nan", "na"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{what} {column.name!r} is not numeric: line {line_of(row)} holds "
            f"{str(column.iloc[row])!r}"
        )
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def from_pandas(
    frame: pd.DataFrame | pd.Series,
    target: str | None = None,
    date: str | None = None,
    covariates: list[str] | tuple[str, ...] = (),
    fill: str | None = None,
    source: str = "",
    notes: tuple[str, ...] = (),
) -> Series:
    """Build a :class:`Series` from a DataFrame (or a named pandas Series).

    Args:
        frame: the table. A ``DatetimeIndex`` on it serves as the dates when ``date`` is None.
        target: the column to forecast; ``None`` picks the only value column.
        date: the time column; ``None`` detects one (named like a date anywhere, else the
            first holding dates); ``""`` means the rows have no times. Whole numbers in it
            are steps, anything else must parse as dates.
        covariates: extra numeric columns fed to the model beside the target.
        fill: ``None`` (missing values or timestamps are an error) or ``"interpolate"``.
        source: label for messages (file path or dataset name).
        notes: lines to put first in ``Series.notes`` (the reader's own).

    Raises:
        ValueError: no such column, non-numeric values, unparsable or duplicate times,
            missing values or timestamps without ``fill``, or no rows.
    """
    if fill not in FILL_METHODS:
        raise ValueError(f"from_pandas: fill must be one of {FILL_METHODS}, got {fill!r}")
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(name=str(frame.name) if frame.name is not None else "value")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    where = f" in {source}" if source else ""
    if len(frame) == 0 or len(frame.columns) == 0:
        raise ValueError(f"no data rows{where}")
    columns = list(frame.columns)
    for name in [target, date or None, *covariates]:
        if name is not None and name not in columns:
            raise ValueError(f"no column {name!r}{where}; columns are {', '.join(columns)}")

    times: pd.Index | None = None
    time_col = None
    if date is None and isinstance(frame.index, pd.DatetimeIndex):
        times = pd.DatetimeIndex(frame.index)
    else:
        taken = {target, *covariates} - {None}
        time_col = find_time_column(frame, taken) if date is None else (date or None)
        if time_col is not None and time_col in taken:
            raise ValueError(f"column {time_col!r} cannot be both the date and a value column")
        if time_col is not None:
            times = parse_time(frame[time_col])
            frame = frame.drop(columns=[time_col])

    if target is None:
        candidates = [c for c in frame.columns if c not in covariates]
        if len(candidates) != 1:
            raise ValueError(
                f"cannot tell which column to forecast{where}: choose one of "
                f"{', '.join(candidates) or '(none)'} as the target"
            )
        target = candidates[0]
    # Numbers are read in file order, so that an error names the file's line.
    values = _numeric(frame[target], "target column")
    covs = [_numeric(frame[c], "covariate column") for c in covariates]
    cov = np.column_stack(covs) if covs else np.zeros((len(values), 0))

    found = list(notes)
    if times is None:
        index: pd.Index = pd.RangeIndex(len(values))
    else:
        what = "date" if isinstance(times, pd.DatetimeIndex) else "step"
        times, (values, cov) = in_order(times, [values, cov], what, where, found)
        index, (values, cov) = on_grid(times, [values, cov], fill, where, found)

    series = Series(
        values=values,
        covariates=cov,
        name=target,
        covariate_names=tuple(covariates),
        index=index,
        freq=infer_freq(index),
        source=source,
        notes=tuple(found),
    )
    missing = series.missing()
    if missing and fill is None:
        first = int(np.flatnonzero(np.isnan(series.features).any(axis=1))[0])
        label = index[first]
        at = first_label(index[first:]) if times is not None else f"row {label}"
        raise ValueError(
            f"{missing} missing value(s){where} (first at {at}); fill them with interpolation "
            "(--fill interpolate) or remove them"
        )
    if missing:
        for j, what in enumerate([target, *covariates]):
            if np.isnan(series.features[:, j]).all():
                raise ValueError(f"column {what!r} has no values at all{where}")
        series = replace(
            series,
            values=interpolate_missing(series.values),
            covariates=interpolate_missing(series.covariates),
            filled=missing,
        )
    return series


def read_csv(
    path: str | os.PathLike[str],
    target: str | None = None,
    date: str | None = None,
    covariates: list[str] | tuple[str, ...] = (),
    fill: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
) -> Series:
    """Read a forecasting CSV (header row, one row per time step) into a :class:`Series`.

    The separator and decimal mark are detected unless ``sep`` (``","``, ``";"``,
    ``"tab"``, ...) or ``decimal`` (``"."`` or ``","``) is given; a dialect other than
    comma-separated with decimal points is said in ``Series.notes``. See
    :func:`from_pandas` for the other arguments. Raises ``ValueError`` for a missing,
    unreadable or empty file, an undeterminable dialect, and everything
    :func:`from_pandas` rejects.
    """
    path = Path(path)
    frame, notes = read_frame(path, sep, decimal, date)
    return from_pandas(frame, target, date, covariates, fill, source=str(path), notes=notes)


def read_frame(
    path: Path, sep: str | None, decimal: str | None, date: str | None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The CSV at ``path`` as a DataFrame with its dialect detected (or given by ``sep`` and
    ``decimal``), and the note saying which dialect when it is not the default. Raises
    ``ValueError`` for a missing, unreadable or empty file or an undeterminable dialect."""
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, expected a CSV file")
    try:
        dialect = sniff(
            path, sep, decimal, lambda name: name == date or date_rank(name) is not None
        )
        if dialect.default and not dialect.trailing:
            frame = pd.read_csv(path, skipinitialspace=True)  # the pandas defaults exactly
        else:
            commas = dialect.decimal == ","  # read as text, then convert the numbers
            frame = pd.read_csv(
                path,
                sep=dialect.sep,
                skipinitialspace=True,
                dtype=str if commas else None,
                index_col=False if dialect.trailing else None,  # False: ignore a last empty field
            )
            frame = to_numbers(frame) if commas else frame
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a readable CSV file: {first}") from None
    if len(frame) == 0:
        raise ValueError(f"{path} has a header but no data rows")
    unnamed = frame.columns.astype(str).str.startswith("Unnamed: ")
    frame = frame.loc[:, ~(unnamed & frame.isna().all().to_numpy())]  # "a;b;" headers
    notes = () if dialect.default else (f"read as {dialect.describe()}",)
    return frame, notes
