"""The data of a forecast run: the data spec, reading it (history, future rows, covariate
kinds), and the series of a saved run.

A data spec is ``{"source": "co2"}`` (statsmodels' weekly Mauna Loa co2, gaps filled),
``{"source": "csv", "path", "target", "date", "covariates", "fill", "sep", "decimal"}``
plus ``future_covariates`` and ``calendar`` when used, or ``{"source": "frame", ...}``
(a DataFrame given in memory, :class:`lstmlens.Forecaster`). See
:mod:`lstmlens.data.covariates` for the three kinds of covariates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..data.calendar import PREFIX
from ..data.covariates import Covariates, split_future_rows, with_calendar
from ..data.series import Series, from_pandas, read_frame
from ..runfiles import is_regular_file
from ..train import TrainConfig
from .forecast import Forecaster

__all__ = [
    "DEFAULT_DATA",
    "TRAIN_DEFAULTS",
    "covariate_lines",
    "data_spec",
    "load_data",
    "load_series",
    "run_covariates",
    "run_data",
    "run_series",
]

DEFAULT_DATA = "co2"
#: How ``forecast train`` trains unless told otherwise (the CLI and lstmlens.Forecaster).
TRAIN_DEFAULTS = TrainConfig(epochs=200, lr=3e-3, max_minutes=2.0)


def data_spec(
    data: str | None,
    target: str | None = None,
    date: str | None = None,
    covariates: tuple[str, ...] = (),
    fill: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    future_covariates: tuple[str, ...] = (),
    calendar: bool = False,
) -> dict[str, Any]:
    """The data spec of a CSV file ``data`` read with these options (None: the co2 default);
    ``sep`` and ``decimal`` are the file's dialect (None: detected). The keys
    ``future_covariates`` and ``calendar`` appear only when used (old specs stay as they were)."""
    Covariates(tuple(covariates), tuple(future_covariates))  # past and future disjoint
    known: dict[str, Any] = (
        {"future_covariates": list(future_covariates)} if future_covariates else {}
    )
    known.update({"calendar": True} if calendar else {})
    if data is None:
        given = [
            f"--{k}"
            for k, v in (
                ("target", target),
                ("date", date),
                ("covariates", covariates),
                ("future-covariates", future_covariates),
            )  # fmt: skip
            if v
        ]
        if given:
            raise ValueError(f"{', '.join(given)} given without a DATA.csv file")
        return {"source": DEFAULT_DATA, **known}
    return {
        "source": "csv",
        "path": str(Path(data).resolve()),
        "target": target,
        "date": date,
        "covariates": list(covariates),
        "fill": fill,
        "sep": sep,
        "decimal": decimal,
        **known,
    }


def load_data(
    spec: dict[str, Any], frame: pd.DataFrame | None = None
) -> tuple[Series, pd.DataFrame | None, Covariates]:
    """``(series, future rows, covariate kinds)`` of a data spec (``frame``: the table of a
    ``"frame"`` spec). With known-future covariates the rows after the last target value
    are split off (``future rows``; None without); with ``calendar`` the series gains the
    calendar columns. ``ValueError`` on any bad input."""
    cov = Covariates.from_spec(spec)
    future = None
    if spec["source"] == DEFAULT_DATA:
        from ..data.datasets import load_co2

        series = from_pandas(load_co2(), fill="interpolate", source="statsmodels co2")
    else:
        notes: tuple[str, ...] = ()
        if frame is None:
            path = Path(spec["path"])
            frame, notes = read_frame(path, spec.get("sep"), spec.get("decimal"), spec.get("date"))
        target, date = spec.get("target"), spec.get("date")
        if cov.future:
            frame, future = split_future_rows(frame, target, date, cov)
        source = str(spec.get("path") or "the DataFrame")
        if future is not None and len(future):
            notes += (
                f"{len(future)} row(s) after the last target value: the future covariates "
                "for predict",
            )
        series = from_pandas(frame, target, date, cov.columns, spec.get("fill"), source, notes)
    series, cov = with_calendar(series, cov, bool(spec.get("calendar")))
    return series, future, cov


def load_series(spec: dict[str, Any]) -> Series:
    """The series a data spec names (``ValueError`` on any bad input)."""
    return load_data(spec)[0]


def covariate_lines(forecaster: Forecaster, cov: Covariates, steps: int | None = None) -> list[str]:
    """What the run says about its covariates: which kind each is, and (for a forecast of
    ``steps`` values, default H) whether past-only ones are held at their last value."""
    if not cov.columns and not cov.calendar:
        return []
    cycles = tuple(dict.fromkeys(n.removeprefix(PREFIX).rsplit("_", 1)[0] for n in cov.calendar))
    named = (("past-only", cov.past), ("known-future", cov.future), ("calendar (sin, cos)", cycles))
    kinds = [f"{kind} {', '.join(names)}" for kind, names in named if names]
    held = forecaster.held_note(steps, cov.past)
    return ["covariates: " + "; ".join(kinds), *([held] if held else [])]


def run_covariates(forecaster: Forecaster) -> Covariates:
    """The covariate kinds a loaded model reads (from its own lists, not the data spec)."""
    calendar = tuple(c for c in forecaster.covariates if c.startswith("calendar:"))
    future = tuple(c for c in forecaster.future if c not in calendar)
    past = tuple(c for c in forecaster.covariates if c not in forecaster.future)
    return Covariates(past, future, calendar)


def run_series(
    run: Path,
    forecaster: Any,
    cfg: dict[str, Any],
    data: str | None = None,
    option: str = "--data",
    **dialect: str | None,
) -> Series:
    """The series of a saved run: its training data (``cfg["data"]``), or the CSV ``data``
    read the same way (same target, date, covariates and fill; ``dialect``: ``sep``,
    ``decimal`` when given). ``option`` names the command's data option in the message when
    the run records no usable data."""
    return run_data(run, forecaster, cfg, data, option, **dialect)[0]


def run_data(
    run: Path,
    forecaster: Any,
    cfg: dict[str, Any],
    data: str | None = None,
    option: str = "--data",
    **dialect: str | None,
) -> tuple[Series, pd.DataFrame | None, Covariates]:
    """:func:`run_series` with the future rows and the covariate kinds (:func:`load_data`);
    the covariates are read as the model reads them (its own lists)."""
    spec = cfg.get("data")
    if data is None and (
        not isinstance(spec, dict) or spec.get("source") not in (DEFAULT_DATA, "csv")
    ):
        raise ValueError(f"{run / 'config.json'}: no usable 'data' entry; pass {option}")
    spec = dict(spec) if isinstance(spec, dict) else {}
    if data is not None:
        spec = {**spec, "source": "csv", "path": data}
    spec.update({k: v for k, v in dialect.items() if v is not None})  # sep, decimal
    if spec["source"] == "csv" and spec.get("target") is None:
        spec["target"] = forecaster.target
    cov = run_covariates(forecaster)
    for key in ("future_covariates", "calendar"):
        spec.pop(key, None)
    spec.update(
        covariates=list(cov.past),
        **({"future_covariates": list(cov.future)} if cov.future else {}),
        **({"calendar": True} if cov.calendar else {}),
    )
    if data is not None or spec["source"] != "csv":
        return load_data(spec)
    # data.path comes from the run folder: a hint, used when it still names a data file,
    # and never quoted from (an error reading it could show the first line of any file)
    hint = f"{run / 'config.json'}: data.path"
    if not is_regular_file(spec.get("path")):
        raise ValueError(f"{hint} names no regular file; pass {option}")
    try:
        return load_data(spec)
    except (ValueError, OSError, UnicodeError):
        raise ValueError(
            f"{hint} cannot be read as the run's training data; pass {option}"
        ) from None
