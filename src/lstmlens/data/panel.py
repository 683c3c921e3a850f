"""Many series in one table: long format (``id, date, target``) or wide (one column each).

A :class:`Panel` holds ``N`` series of possibly different lengths ``T_i`` and start
dates, stored end to end in one flat array so that windows can be cut from it by
index arithmetic (:mod:`lstmlens.data.panel_windows`) without copying:

    values  = [y_0[0..T_0) | y_1[0..T_1) | ... ]       # (sum T_i,) float64
    offsets = [0, T_0, T_0 + T_1, ..., sum T_i]         # (N + 1,) int64
    series i = values[offsets[i] : offsets[i + 1]]

**Long** tables have one row per series and time: ``--id COL --date COL --target COL``.
Each series is sorted and put on its regular time grid like a single series
(:mod:`lstmlens.data.timegrid`). **Wide** tables share one time column and hold one
series per numeric column (``--target A,B`` or ``--target all``); blank cells before a
column's first value or after its last mean the series starts later or ends earlier.

Reading reuses the single-series reader's dialect detection (:mod:`lstmlens.data.dialect`)
and time-column logic. Bad input raises ``ValueError`` with one line naming the
problem: duplicate ``(id, date)`` rows, a blank id or date, a non-numeric target (the
series and the file line), ``all`` with no numeric column, and a file without ``--id``
whose dates repeat (a long table read as one series).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .series import infer_freq, interpolate_missing, read_frame
from .timegrid import (
    find_time_column,
    first_label,
    in_order,
    line_of,
    on_grid,
    parse_time,
)

_MAX_NOTES = 5  # per-series notes kept before a summary line

__all__ = ["Panel", "from_long", "from_wide", "read_frame", "read_panel", "refuse_repeated_dates"]


@dataclass(frozen=True)
class Panel:
    """``N`` series stored end to end (see the module docstring for the layout).

    Attributes:
        values: all series concatenated, shape ``(sum T_i,)``, float64, no NaN.
        offsets: series ``i`` is ``values[offsets[i]:offsets[i + 1]]``; shape ``(N + 1,)``.
        ids: the series names, ``N`` of them (the id values, or the wide column names).
        starts: the first time label of each series (dates or steps), ``N`` of them.
        freq: pandas frequency alias shared by the series, or ``None``.
        source: where the data came from, for reports.
        notes: what reading changed or noticed, one line each.
        static: static covariates, one row per series, shape ``(N, K)`` (None: none).
        static_names: their ``K`` column names.
    """

    values: np.ndarray
    offsets: np.ndarray
    ids: tuple[str, ...]
    starts: tuple[object, ...] = ()
    freq: str | None = None
    source: str = ""
    notes: tuple[str, ...] = ()
    static: np.ndarray | None = None
    static_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) != len(self.ids) + 1:
            raise ValueError(
                f"Panel: expected {len(self.ids) + 1} offsets for {len(self.ids)} series, "
                f"got shape {self.offsets.shape}"
            )
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.values):
            raise ValueError("Panel: offsets must run from 0 to len(values)")
        if self.static is not None and self.static.shape != (len(self.ids), len(self.static_names)):
            raise ValueError(
                f"Panel: static covariates of shape ({len(self.ids)}, {len(self.static_names)}) "
                f"expected, got {self.static.shape}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """``T_i`` of every series, shape ``(N,)``."""
        return np.diff(self.offsets)

    def series(self, i: int) -> np.ndarray:
        """The values of series ``i``, shape ``(T_i,)`` (a view)."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def select(self, keep: np.ndarray) -> Panel:
        """The series where the boolean mask ``keep`` (shape ``(N,)``) is true."""
        keep = np.asarray(keep, dtype=bool)
        parts = [self.series(int(i)) for i in np.flatnonzero(keep)]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        return Panel(
            values=np.concatenate(parts) if parts else np.zeros(0),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            ids=tuple(np.asarray(self.ids, dtype=object)[keep]),
            starts=tuple(np.asarray(self.starts, dtype=object)[keep]) if self.starts else (),
            freq=self.freq,
            source=self.source,
            notes=self.notes,
            static=None if self.static is None else self.static[keep],
            static_names=self.static_names,
        )

    def trim_end(self, rows: int) -> Panel:
        """Every series without its last ``rows`` points (a backtest fold's past); series
        left with none are dropped."""
        if rows == 0:
            return self
        keep = self.lengths > rows
        parts = [self.series(int(i))[:-rows] for i in np.flatnonzero(keep)]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        return replace(
            self.select(keep),
            values=np.concatenate(parts) if parts else np.zeros(0),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )

    def drop_short(self, min_length: int) -> tuple[Panel, tuple[str, ...]]:
        """Drop series shorter than ``min_length``; return the rest and the dropped names.

        Raises ``ValueError`` when no series is long enough."""
        keep = self.lengths >= min_length
        dropped = tuple(i for i, k in zip(self.ids, keep, strict=True) if not k)
        if not keep.any():
            raise ValueError(
                f"no series has the {min_length} points one window needs "
                f"(the longest has {int(self.lengths.max(initial=0))})"
            )
        return (self if keep.all() else self.select(keep)), dropped


def _assemble(
    parts: list[np.ndarray],
    ids: list[str],
    starts: list[object],
    freq: str | None,
    source: str,
    notes: list[str] | tuple[str, ...],
) -> Panel:
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    return Panel(
        values=np.concatenate(parts) if parts else np.zeros(0),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        ids=tuple(ids),
        starts=tuple(starts),
        freq=freq,
        source=source,
        notes=tuple(notes),
    )


def _numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)``: the column as float64 (blanks NaN) and a mask of cells that
    hold text that is not a number."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(column), bool)
    parsed = pd.to_numeric(column, errors="coerce")
    text = column.astype("string").str.strip()
    bad = parsed.isna() & column.notna() & (text != "") & ~text.str.lower().isin(["nan", "na"])
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan), bad.to_numpy(dtype=bool)


def _fill(values: np.ndarray, fill: str | None, what: str, times: pd.Index) -> np.ndarray:
    """Interpolate missing values when asked; else refuse naming the first one."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    if fill is None:
        at = first_label(times[np.flatnonzero(missing)[0] :])
        raise ValueError(
            f"{int(missing.sum())} missing value(s) in {what} (first at {at}); fill them with "
            "--fill interpolate or remove them"
        )
    return interpolate_missing(values)


def _as_text_dates(column: pd.Series) -> pd.Series:
    """A datetime column of an in-memory frame as ISO text (as a CSV holds it), so that
    it parses as dates rather than as the nanosecond numbers behind them."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "")
    return column


def _check_columns(frame: pd.DataFrame, names: list[str | None], where: str) -> None:
    columns = list(frame.columns)
    for name in names:
        if name is not None and name not in columns:
            raise ValueError(f"no column {name!r}{where}; columns are {', '.join(columns)}")


def from_long(
    frame: pd.DataFrame,
    id: str,
    target: str,
    date: str | None = None,
    fill: str | None = None,
    source: str = "",
    notes: tuple[str, ...] = (),
    static: tuple[str, ...] = (),
) -> Panel:
    """A :class:`Panel` from a long table: one row per ``(id, date)``; ``date=None`` detects
    the time column. Series keep the order in which their ids first appear. ``static``:
    numeric columns constant within each series (static covariates)."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    where = f" in {source}" if source else ""
    _check_columns(frame, [id, target, date, *static], where)
    date = date or find_time_column(frame, {id, target, *static})
    if date is None:
        raise ValueError(f"no time column{where}: name it with --date")
    for name in (id, date):
        blank = frame[name].isna() | (frame[name].astype("string").str.strip() == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0])
            raise ValueError(f"{name!r} is blank at line {line_of(row)}{where}")
    ids = frame[id].astype(str).str.strip()
    values, bad = _numbers(frame[target])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"target {target!r} of series {ids.iloc[row]!r} is not numeric: line "
            f"{line_of(row)}{where} holds {str(frame[target].iloc[row])!r}"
        )
    times = pd.Index(frame[date].map(str).str.strip()).rename(date)
    dup = pd.DataFrame({"id": ids, "t": times}).duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"series {ids.iloc[row]!r} has {date} {times[row]} more than once "
            f"(line {line_of(row)}{where})"
        )
    parsed = parse_time(_as_text_dates(frame[date]))
    parts, names, starts, found, shuffled = [], [], [], [], False
    groups = ids.groupby(ids, sort=False).indices  # id -> its row numbers, in file order
    for name in pd.unique(ids):  # series in the order their ids first appear
        rows = groups[name]
        own: list[str] = []  # notes about this series
        t, (v,) = in_order(parsed[rows], [values[rows]], "date", where, own)
        t, (v,) = on_grid(t, [v], fill, f" in series {name!r}{where}", own)
        parts.append(_fill(v, fill, f"series {name!r}{where}", t))
        names.append(str(name))
        starts.append(t[0])
        shuffled |= any("sorted" in line for line in own)
        found += [f"series {name!r}: {line}" for line in own if "sorted" not in line]
    if len(found) > _MAX_NOTES:  # one line per series would drown the report
        found = [*found[:_MAX_NOTES], f"... and {len(found) - _MAX_NOTES} more such notes"]
    found = [*notes, *(["rows sorted by id and date"] if shuffled else []), *found]
    panel = _assemble(parts, names, starts, _shared_freq(parsed, ids), source, found)
    if not static:
        return panel
    table = np.column_stack([_static(frame[c], ids, groups, names, where) for c in static])
    return replace(panel, static=table, static_names=tuple(static))


def _static(
    column: pd.Series, ids: pd.Series, groups: dict, names: list[str], where: str
) -> np.ndarray:
    """One static covariate: its value in every series (``(N,)``), which must be a number,
    never blank, and the same on every row of the series."""
    values, bad = _numbers(column)
    blank = np.isnan(values)
    if bad.any() or blank.any():
        row = int(np.flatnonzero(bad | blank)[0])
        raise ValueError(
            f"static covariate {column.name!r} of series {ids.iloc[row]!r} is not a number: "
            f"line {line_of(row)}{where} holds {str(column.iloc[row])!r}"
        )
    out = np.empty(len(names))
    for k, name in enumerate(names):
        own = values[groups[name]]
        if np.any(own != own[0]):
            other = own[np.flatnonzero(own != own[0])[0]]
            raise ValueError(
                f"static covariate {column.name!r} is not constant in series {name!r} "
                f"({own[0]:g} and {other:g}){where}"
            )
        out[k] = own[0]
    return out


def _shared_freq(times: pd.Index, ids: pd.Series) -> str | None:
    """The frequency of the longest series' dates (``None`` for steps or irregular)."""
    if not isinstance(times, pd.DatetimeIndex):
        return None
    longest = ids.value_counts().index[0]
    return infer_freq(pd.DatetimeIndex(times[(ids == longest).to_numpy()]).sort_values())


def from_wide(
    frame: pd.DataFrame,
    targets: str | list[str] | tuple[str, ...] = "all",
    date: str | None = None,
    fill: str | None = None,
    source: str = "",
    notes: tuple[str, ...] = (),
) -> Panel:
    """A :class:`Panel` from a wide table: each target column one series on the shared
    time column. ``targets="all"`` takes every numeric column but the time column."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    where = f" in {source}" if source else ""
    named = [] if targets == "all" else list(targets)
    _check_columns(frame, [*named, date or None], where)
    date = date if date is not None else find_time_column(frame, set(named))
    if targets == "all":
        named = [
            c for c in frame.columns if c != date and not _numbers(frame[c])[1].any()
            and frame[c].notna().any()
        ]  # fmt: skip
        if not named:
            raise ValueError(f"--target all: no numeric column{where}")
    columns = []
    for name in named:
        v, bad = _numbers(frame[name])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"target {name!r} is not numeric: line {line_of(row)}{where} holds "
                f"{str(frame[name].iloc[row])!r}"
            )
        columns.append(v)
    matrix = np.column_stack(columns)  # (T, N)
    found = list(notes)
    if date:
        times = parse_time(_as_text_dates(frame[date]))
        times, (matrix,) = in_order(times, [matrix], "date", where, found)
        times, (matrix,) = on_grid(times, [matrix], fill, where, found)
    else:
        times = pd.RangeIndex(len(matrix))
    parts, starts = [], []
    for j, name in enumerate(named):
        ok = np.flatnonzero(~np.isnan(matrix[:, j]))
        if not len(ok):
            raise ValueError(f"column {name!r} has no values at all{where}")
        lo, hi = ok[0], ok[-1] + 1  # blanks before the first / after the last value: shorter
        parts.append(_fill(matrix[lo:hi, j], fill, f"column {name!r}{where}", times[lo:hi]))
        starts.append(times[lo])
    return _assemble(parts, named, starts, infer_freq(times), source, found)


def refuse_repeated_dates(
    frame: pd.DataFrame, date: str | None, source: str = "", taken: set[str] | None = None
) -> None:
    """Refuse a long table read without ``--id``: its dates repeat. ``ValueError`` naming
    the first repeated date and the columns that could be the id."""
    frame = frame.rename(columns=str)
    date = date if date is not None else find_time_column(frame, taken or set())
    if not date or date not in frame.columns:
        return
    times = frame[date].astype(str).str.strip()
    repeated = times[times.duplicated()]
    if repeated.empty:
        return
    text = [c for c in frame.columns if c != date and _numbers(frame[c])[1].any()]
    hint = f" ({', '.join(map(repr, text))}?)" if text else ""
    where = f" in {source}" if source else ""
    raise ValueError(
        f"{date} {repeated.iloc[0]} appears more than once{where}: a table of many series? "
        f"name the series column with --id{hint}"
    )


def read_panel(
    path: str | os.PathLike[str],
    target: str | list[str] | tuple[str, ...],
    id: str | None = None,
    date: str | None = None,
    fill: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    static: tuple[str, ...] = (),
) -> Panel:
    """Read many series from a CSV: long with ``id``, else wide (``target`` a list of
    columns, ``"A,B"`` or ``"all"``). A single target without ``id`` whose dates repeat
    is refused with the hint ``--id``; ``static`` columns need a long table."""
    path = Path(path)
    frame, notes = read_frame(path, sep, decimal, date)
    if isinstance(target, str) and target != "all":
        target = [t.strip() for t in target.split(",") if t.strip()]
    if id is not None:
        if isinstance(target, str) or len(target) != 1:
            raise ValueError("a long table (--id) takes one --target column")
        return from_long(frame, id, target[0], date, fill, str(path), notes, tuple(static))
    if static:
        raise ValueError("static covariates (--static) need a long table (--id)")
    refuse_repeated_dates(frame, date, str(path))
    return from_wide(frame, target, date, fill, str(path), notes)
