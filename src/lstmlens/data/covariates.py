"""Which kind each covariate is, and the future rows of the known-future ones.

A forecast's covariates are of three kinds (:class:`Covariates`):

* ``past``: columns known only up to the forecast origin (a competitor's price, the
  weather measured); past the origin a rolled-forward forecast holds them at their
  last value, and says so;
* ``future``: columns known in advance (holidays, planned promotions), read from the
  file like the past ones, and needed for the forecast steps too;
* ``calendar``: features computed from the dates (:mod:`lstmlens.data.calendar`),
  known for any date.

For ``forecast predict`` the future values come from the same file as the history:
the rows after the last target value, with the target left blank
(:func:`split_future_rows`). :func:`future_values` checks that they are there (their
dates, their count, no blanks) and returns them as one array in the model's order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .calendar import calendar_cycles, calendar_features
from .series import Series
from .timegrid import find_time_column, first_label, parse_time

__all__ = ["Covariates", "split_future_rows", "future_values", "with_calendar"]


@dataclass(frozen=True)
class Covariates:
    """The covariate columns of a forecast, by kind (the module docstring).

    ``calendar`` holds the names of the calendar feature columns
    (``calendar:month_of_year_sin``, ...), filled in by :func:`with_calendar`.
    """

    past: tuple[str, ...] = ()
    future: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        both = sorted(set(self.past) & set(self.future))
        if both:
            raise ValueError(
                f"covariate(s) {', '.join(both)} given as both past (--covariates) and "
                "future (--future-covariates)"
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """The covariate columns read from the data: past, then future."""
        return self.past + self.future

    @property
    def known(self) -> tuple[str, ...]:
        """Every known-future covariate the model reads: future, then calendar."""
        return self.future + self.calendar

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "past": list(self.past),
            "future": list(self.future),
            "calendar": list(self.calendar),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Covariates:
        """The kinds a data spec names (``covariates``, ``future_covariates``)."""
        return cls(tuple(spec.get("covariates") or ()), tuple(spec.get("future_covariates") or ()))


def split_future_rows(
    frame: pd.DataFrame, target: str | None, date: str | None, covariates: Covariates
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(history, future)``: the rows up to the last one with a target value, and the
    rows after it (their target blank). ``target`` None: the only column that is neither
    the time nor a covariate (as :func:`~lstmlens.data.series.from_pandas` picks it)."""
    if target is None:
        taken = set(covariates.columns)
        time = find_time_column(frame, taken) if date is None else (date or None)
        names = [str(c) for c in frame.columns if str(c) not in taken and str(c) != time]
        if len(names) != 1:
            return frame, frame.iloc[:0]  # from_pandas says which columns to choose from
        target = names[0]
    if target not in frame.columns:
        return frame, frame.iloc[:0]  # from_pandas names the missing column
    column = frame[target]
    blank = column.isna() | (column.astype("string").str.strip() == "").fillna(False)
    filled = np.flatnonzero(~blank.to_numpy())
    end = int(filled[-1]) + 1 if len(filled) else len(frame)
    return frame.iloc[:end], frame.iloc[end:]


def with_calendar(
    series: Series, covariates: Covariates, calendar: bool
) -> tuple[Series, Covariates]:
    """``series`` with the calendar feature columns of its frequency appended (when
    ``calendar``), and ``covariates`` naming them. ``ValueError`` when the dates carry
    no calendar (no dates, irregular or yearly dates)."""
    if not calendar:
        return series, covariates
    names, values = calendar_features(series.index, calendar_cycles(series.freq))
    series = replace(
        series,
        covariates=np.column_stack([series.covariates, values]),
        covariate_names=series.covariate_names + names,
    )
    return series, replace(covariates, calendar=names)


def future_values(
    series: Series,
    future: pd.DataFrame | None,
    covariates: Covariates,
    rows: int,
    date: str | None = None,
    where: str = "the data",
) -> np.ndarray | None:
    """The known-future covariates of the ``rows`` steps after ``series``: ``(rows, K)``
    in the order of ``covariates.known`` (data units), or None without any.

    ``future`` holds the rows after the last target value (:func:`split_future_rows`);
    calendar features come from the dates. Raises ``ValueError`` naming the columns and
    the rows needed when they are missing, blank, non-numeric or on other dates.
    """
    if not covariates.known or rows == 0:
        return None
    index = series.future_index(rows)
    span = f"{_label(index[0])} .. {_label(index[-1])}"
    blocks: list[np.ndarray] = []
    if covariates.future:
        names = ", ".join(covariates.future)
        have = 0 if future is None else len(future)
        if have < rows:
            raise ValueError(
                f"the future covariates {names} are needed for the {rows} rows after the last "
                f"target value ({span}); {where} has {have}: add them with the target left blank"
            )
        assert future is not None
        future = future.iloc[:rows]
        _check_dates(future, date, index, where)
        missing = [c for c in covariates.future if c not in future.columns]
        if missing:
            raise ValueError(f"no column {', '.join(missing)} for the future rows in {where}")
        values = future[list(covariates.future)].apply(pd.to_numeric, errors="coerce")
        if values.isna().to_numpy().any():
            row, col = np.argwhere(values.isna().to_numpy())[0]
            raise ValueError(
                f"future covariate {covariates.future[col]!r} is blank or not a number at "
                f"{_label(index[row])} in {where}; the {rows} rows after the last target "
                f"value ({span}) need {names}"
            )
        blocks.append(values.to_numpy(dtype=np.float64))
    if covariates.calendar:
        cycles = tuple(n[len("calendar:") : -len("_sin")] for n in covariates.calendar[::2])
        blocks.append(calendar_features(index, cycles)[1])
    return np.column_stack(blocks)


def _check_dates(future: pd.DataFrame, date: str | None, index: pd.Index, where: str) -> None:
    """The future rows' time column, when there is one, must hold the expected times."""
    time = date or (find_time_column(future, set()) if date is None else None)
    if time is None or time not in future.columns:
        return
    try:
        got = parse_time(future[time].reset_index(drop=True))
    except ValueError:
        return  # from_pandas on the history already names a bad time column
    expected = pd.Index(index)
    if len(got) != len(expected) or not (np.asarray(got) == np.asarray(expected)).all():
        bad = next((i for i in range(len(expected)) if i >= len(got) or got[i] != expected[i]), 0)
        raise ValueError(
            f"the future rows in {where} must follow the last target value step by step: "
            f"row {bad + 1} after it is {_label(got[bad]) if bad < len(got) else 'missing'}, "
            f"expected {_label(expected[bad])}"
        )


def _label(value: Any) -> str:
    return first_label(pd.Index([value]))
