"""Time series for forecasting: reading a CSV, missing values, frequency and season.

A :class:`Series` is one target column ``y`` (shape ``(T,)``) plus optional covariate
columns ``X`` (shape ``(T, C)``) on a shared time index (dates, or row numbers when
the file has no date column). Everything downstream (windows, scaling, the model,
the baselines) works on these NumPy arrays in float64.

Reading never guesses silently: a column that is not numeric, a date column that
does not parse, or missing values without ``fill="interpolate"`` raise
``ValueError`` with a message naming the column and the first offending line.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DATE_NAMES",
    "Series",
    "from_pandas",
    "infer_freq",
    "interpolate_missing",
    "read_csv",
    "season_from_freq",
]

#: Column names taken as the date column when ``date`` is not given.
DATE_NAMES = ("date", "ds", "time", "timestamp", "datetime", "day", "week", "month", "period")

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
    """

    values: np.ndarray
    covariates: np.ndarray
    name: str
    covariate_names: tuple[str, ...] = ()
    index: pd.Index = field(default_factory=lambda: pd.RangeIndex(0))
    freq: str | None = None
    filled: int = 0
    source: str = ""

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
        """Index labels of the ``steps`` steps after the end (dates if ``freq`` is known)."""
        if isinstance(self.index, pd.DatetimeIndex) and self.freq is not None and len(self):
            return pd.date_range(self.index[-1], periods=steps + 1, freq=self.freq)[1:]
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


def _line(frame_row: int) -> int:
    """CSV line number of a data row (line 1 is the header)."""
    return frame_row + 2


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
            f"{what} {column.name!r} is not numeric: line {_line(row)} holds "
            f"{str(column.iloc[row])!r}"
        )
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


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
            f"date column {column.name!r} does not parse as dates: line {_line(row)} holds "
            f"{str(column.iloc[row])!r}"
        )
    return pd.DatetimeIndex(dates)


def _guess_date_column(frame: pd.DataFrame) -> str | None:
    """The first column, if it is named like a date or holds (non-numeric) dates."""
    first = str(frame.columns[0])
    col = frame[first]
    if first.strip().lower() in DATE_NAMES:
        return first
    if pd.api.types.is_numeric_dtype(col.dtype):
        return None
    try:
        _parse_dates(col)
    except ValueError:
        return None
    return first


def from_pandas(
    frame: pd.DataFrame | pd.Series,
    target: str | None = None,
    date: str | None = None,
    covariates: list[str] | tuple[str, ...] = (),
    fill: str | None = None,
    source: str = "",
) -> Series:
    """Build a :class:`Series` from a DataFrame (or a named pandas Series).

    Args:
        frame: the table. A ``DatetimeIndex`` on it serves as the dates when ``date`` is None.
        target: the column to forecast; ``None`` picks the only numeric non-date column.
        date: the date column; ``None`` detects one (first column named like a date or
            holding dates); ``""`` means the rows have no dates.
        covariates: extra numeric columns fed to the model beside the target.
        fill: ``None`` (missing values are an error) or ``"interpolate"``.
        source: label for messages (file path or dataset name).

    Raises:
        ValueError: no such column, non-numeric values, unparsable or duplicate dates,
            missing values without ``fill``, or no rows.
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

    if date is None and isinstance(frame.index, pd.DatetimeIndex):
        index: pd.Index = pd.DatetimeIndex(frame.index)
    else:
        date_col = _guess_date_column(frame) if date is None else (date or None)
        if date_col is not None and date_col in (target, *covariates):
            raise ValueError(f"column {date_col!r} cannot be both the date and a value column")
        if date_col is None:
            index = pd.RangeIndex(len(frame))
        else:
            index = _parse_dates(frame[date_col])
            frame = frame.drop(columns=[date_col])
    if isinstance(index, pd.DatetimeIndex):
        if index.has_duplicates:
            dup = index[index.duplicated()][0]
            raise ValueError(f"date {dup.date()} appears more than once{where}")
        if not index.is_monotonic_increasing:
            order = np.argsort(index.to_numpy(), kind="stable")
            frame, index = frame.iloc[order], index[order]

    if target is None:
        candidates = [c for c in frame.columns if c not in covariates]
        if len(candidates) != 1:
            raise ValueError(
                f"cannot tell which column to forecast{where}: choose one of "
                f"{', '.join(candidates) or '(none)'} as the target"
            )
        target = candidates[0]
    values = _numeric(frame[target], "target column")
    covs = [_numeric(frame[c], "covariate column") for c in covariates]
    cov = np.column_stack(covs) if covs else np.zeros((len(values), 0))

    series = Series(
        values=values,
        covariates=cov,
        name=target,
        covariate_names=tuple(covariates),
        index=index,
        freq=infer_freq(index),
        source=source,
    )
    missing = series.missing()
    if missing and fill is None:
        first = int(np.flatnonzero(np.isnan(series.features).any(axis=1))[0])
        label = index[first]
        at = label.date() if isinstance(label, pd.Timestamp) else f"row {label}"
        raise ValueError(
            f"{missing} missing value(s){where} (first at {at}); fill them with interpolation "
            "(--fill interpolate) or remove them"
        )
    if missing:
        for arr, what in [(values, target), *zip(covs, covariates, strict=True)]:
            if np.isnan(arr).all():
                raise ValueError(f"column {what!r} has no values at all{where}")
        series = replace(
            series,
            values=interpolate_missing(values),
            covariates=interpolate_missing(cov),
            filled=missing,
        )
    return series


def read_csv(
    path: str | os.PathLike[str],
    target: str | None = None,
    date: str | None = None,
    covariates: list[str] | tuple[str, ...] = (),
    fill: str | None = None,
) -> Series:
    """Read a forecasting CSV (header row, one row per time step) into a :class:`Series`.

    See :func:`from_pandas` for the arguments. Raises ``ValueError`` for a missing,
    unreadable or empty file as well as for everything :func:`from_pandas` rejects.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, expected a CSV file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a readable CSV file: {first}") from None
    if len(frame) == 0:
        raise ValueError(f"{path} has a header but no data rows")
    return from_pandas(frame, target, date, covariates, fill, source=str(path))
