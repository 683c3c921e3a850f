"""Calendar features: known-future covariates computed from the dates (``--calendar``).

Each feature is a position ``p`` within a cycle of length ``P`` (the month within the
year, the day within the week, ...), encoded as the pair

    sin(2 pi p / P),  cos(2 pi p / P)

so that the last position of a cycle sits next to the first (December beside January)
and every feature is two bounded columns, whatever ``P``. Which cycles a series gets
follows its inferred frequency (:data:`CALENDARS`): the cycles longer than one step and
shorter than the series' years, e.g. monthly dates get the month of the year, hourly
dates the hour of the day and the day of the week. The columns are named
``calendar:<cycle>_sin`` and ``calendar:<cycle>_cos``.

Dates are known in advance, so the same features exist for the forecast steps: the
forecaster reads them as known-future covariates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["CALENDARS", "CYCLES", "PREFIX", "calendar_cycles", "calendar_features"]

PREFIX = "calendar:"

Of = Callable[[pd.DatetimeIndex], np.ndarray]  # dates (T,) -> numbers (T,)

#: cycle -> (position of each date in the cycle (0-based), cycle length).
CYCLES: dict[str, tuple[Of, Of]] = {
    "quarter_of_year": (lambda d: d.quarter.to_numpy() - 1, lambda d: np.full(len(d), 4.0)),
    "month_of_year": (lambda d: d.month.to_numpy() - 1, lambda d: np.full(len(d), 12.0)),
    "week_of_year": (
        lambda d: d.isocalendar().week.to_numpy(dtype=np.float64) - 1,
        lambda d: np.full(len(d), 52.18),  # ISO years have 52 or 53 weeks
    ),
    "day_of_year": (
        lambda d: d.day_of_year.to_numpy() - 1,
        lambda d: np.where(d.is_leap_year, 366.0, 365.0),
    ),
    "day_of_month": (
        lambda d: d.day.to_numpy() - 1,
        lambda d: d.days_in_month.to_numpy(dtype=np.float64),
    ),
    "day_of_week": (lambda d: d.day_of_week.to_numpy(), lambda d: np.full(len(d), 7.0)),
    "hour_of_day": (lambda d: d.hour.to_numpy(), lambda d: np.full(len(d), 24.0)),
    "minute_of_hour": (lambda d: d.minute.to_numpy(), lambda d: np.full(len(d), 60.0)),
}

#: Offset class name fragment (as in ``series.season_from_freq``) -> the cycles of that
#: frequency. Order matters: "SemiMonth" and "BusinessDay" before "Month" and "Day".
CALENDARS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SemiMonth", ("month_of_year", "day_of_month")),
    ("Month", ("month_of_year",)),
    ("Quarter", ("quarter_of_year",)),
    ("Week", ("week_of_year",)),
    ("BusinessDay", ("day_of_week", "day_of_year")),
    ("Day", ("day_of_week", "day_of_year")),
    ("Hour", ("hour_of_day", "day_of_week")),
    ("Minute", ("minute_of_hour", "hour_of_day")),
)


def calendar_cycles(freq: str | None) -> tuple[str, ...]:
    """The cycles (:data:`CYCLES` keys) of a pandas frequency alias.

    Raises ``ValueError`` when the dates carry no calendar cycle: no frequency (no date
    column, or irregular dates) or a yearly one.
    """
    if freq is None:
        raise ValueError(
            "--calendar needs a date column with a regular frequency (the features come "
            "from the dates)"
        )
    try:
        name = type(pd.tseries.frequencies.to_offset(freq)).__name__
    except ValueError:
        name = ""
    for fragment, cycles in CALENDARS:
        if fragment in name:
            return cycles
    raise ValueError(f"--calendar: dates of frequency {freq!r} have no calendar cycle to encode")


def calendar_features(
    index: pd.Index, cycles: tuple[str, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    """``(names, values)``: the sin/cos columns of ``cycles`` for ``index``; ``values`` has
    shape ``(T, 2 * len(cycles))``. ``index`` must be a ``DatetimeIndex``."""
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError("--calendar needs dates, got an index of steps")
    unknown = [c for c in cycles if c not in CYCLES]
    if unknown:
        raise ValueError(f"calendar_features: unknown cycle(s) {unknown}; known: {list(CYCLES)}")
    names: list[str] = []
    columns: list[np.ndarray] = []
    for cycle in cycles:
        position, length = CYCLES[cycle]
        angle = 2 * np.pi * np.asarray(position(index), dtype=np.float64) / length(index)
        names += [f"{PREFIX}{cycle}_sin", f"{PREFIX}{cycle}_cos"]
        columns += [np.sin(angle), np.cos(angle)]
    values = np.column_stack(columns) if columns else np.zeros((len(index), 0))
    return tuple(names), values
