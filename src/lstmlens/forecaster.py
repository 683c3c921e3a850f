"""``lstmlens.Forecaster``: forecasting from Python, the way ``lstmlens forecast`` does it.

    fc = lstmlens.Forecaster(horizon=12, epochs=50)
    fc.fit(df, target="sales", date="month", future_covariates=["promo"], calendar=True)
    fc.predict()                       # DataFrame: date, forecast, q0.1, q0.5, q0.9
    fc.predict(future=promos_ahead)    # the known-future covariates of the next H rows
    fc.save("runs/sales")              # a run folder, as ``forecast train`` writes
    fc = lstmlens.Forecaster.load("runs/sales")   # also any ``forecast train`` run

Everything goes through the task runner (:mod:`lstmlens.tasks.forecast_run`): ``fit`` is
``forecast train`` (the same data reading, split, training loop, calibration, scoring
against the baselines and run folder), ``predict`` is ``forecast predict`` and
``backtest`` is ``forecast backtest``, so a run trained here and one trained by the
command line with the same options give the same forecasts. ``Forecaster.load`` reads
a run folder with the checks of :func:`lstmlens.load_run` (safetensors and JSON only,
every field validated).

Options (``Forecaster(horizon, **options)``) are the fields of
:class:`~lstmlens.tasks.forecast_config.ForecastConfig` (``window``, ``mode``,
``quantiles``, ``hidden_size``, ``members``, ``season``, ...) and of
:class:`~lstmlens.train.TrainConfig` (``epochs``, ``lr``, ``max_minutes``, ``seed``,
...), with the defaults of ``forecast train``; and ``baselines`` (names, or ``()``),
``quiet`` (default True: no progress lines) and ``lens`` (default False: no lens page).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Forecaster"]

_OWN = {"baselines", "quiet", "lens"}


class Forecaster:
    """An LSTM forecaster with ``fit`` / ``predict`` / ``backtest`` / ``save`` / ``load``.

    Args:
        horizon: H, the steps forecast from each origin.
        **options: model and training options (the module docstring); an unknown one
            raises ``TypeError``, a bad value ``ValueError``.
    """

    def __init__(self, horizon: int = 1, **options: Any) -> None:
        from .tasks.baselines import BASELINES
        from .tasks.forecast_config import ForecastConfig
        from .tasks.forecast_run import TRAIN_DEFAULTS

        model_fields = {f.name for f in dataclasses.fields(ForecastConfig)}
        train_fields = {f.name for f in dataclasses.fields(TRAIN_DEFAULTS)}
        unknown = sorted(set(options) - model_fields - train_fields - _OWN)
        if unknown:
            raise TypeError(
                f"Forecaster: unknown option(s) {', '.join(unknown)}; options are "
                f"{', '.join(sorted(model_fields | train_fields | _OWN))}"
            )
        if "horizon" in options:
            raise TypeError("Forecaster: give the horizon once, as the first argument")
        try:
            self.config = ForecastConfig(
                horizon=horizon, **{k: v for k, v in options.items() if k in model_fields}
            )
            self.train = dataclasses.replace(
                TRAIN_DEFAULTS, **{k: v for k, v in options.items() if k in train_fields}
            )
        except ValueError as err:
            raise ValueError(f"Forecaster: {err}") from None
        self._asked = self.config  # as asked; fit() resolves the data-decided fields
        self.baselines = tuple(options.get("baselines", BASELINES))
        self.quiet = bool(options.get("quiet", True))
        self.lens = bool(options.get("lens", False))
        self.model: Any = None  # the fitted lstmlens.tasks.forecast.Forecaster
        self.metrics: dict[str, Any] = {}  # metrics.json of the fit (empty after load)
        self.run_dir: Path | None = None
        self._cfg: dict[str, Any] = {}  # config.json of the run
        self._series: Any = None  # the history predict() forecasts from, and its
        self._future: pd.DataFrame | None = None  # rows after the last target value
        self._frame: pd.DataFrame | None = None  # the fitted table (a "frame" spec)

    def __repr__(self) -> str:
        state = f"fitted on {self.model.target!r}" if self.model is not None else "not fitted"
        return f"Forecaster(horizon={self.config.horizon}, {state})"

    # ----------------------------------------------------------------- fit

    def fit(
        self,
        data: pd.DataFrame | str | os.PathLike[str],
        target: str | None = None,
        date: str | None = None,
        covariates: list[str] | tuple[str, ...] = (),
        future_covariates: list[str] | tuple[str, ...] = (),
        calendar: bool = False,
        fill: str | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> Forecaster:
        """Train on ``data`` (a DataFrame, or the path of a CSV file read as ``forecast
        train`` reads it) and score on its last rows against the baselines (``metrics``).

        ``covariates`` are past-only columns, ``future_covariates`` columns known in
        advance, ``calendar`` adds features of the dates (``forecast train --calendar``).
        Rows after the last target value (target blank) hold the future covariates that
        ``predict()`` uses. The run folder goes to ``run_dir`` (default: a temporary one,
        kept until this object goes; :meth:`save` writes a lasting copy); an existing
        non-empty one is replaced only with ``overwrite``. Returns ``self``.
        """
        from .cli.errors import CLIError
        from .cli.run_folder import prepare_run_dir
        from .tasks.forecast_run import data_spec, load_data, prepare_forecast
        from .train import Reporter

        frame = self._frame_of(data, "fit")
        for name, value in (("covariates", covariates), ("future_covariates", future_covariates)):
            if isinstance(value, str) or not all(isinstance(c, str) for c in value):
                raise TypeError(f"Forecaster.fit: {name} must be a list of column names")
        try:
            spec = data_spec(
                str(data) if frame is None else "DataFrame", target, date, tuple(covariates),
                fill, None, None, tuple(future_covariates), bool(calendar),
            )  # fmt: skip
            if frame is not None:  # read from memory: no path
                spec = {**spec, "source": "frame", "path": None}
            prepared = prepare_forecast(spec, self.config, self.train, self.baselines, frame)
            if run_dir is None:  # a scratch folder, removed with this object
                run_dir = tempfile.mkdtemp(prefix="lstmlens-forecaster-")
                weakref.finalize(self, shutil.rmtree, run_dir, ignore_errors=True)
            folder = prepare_run_dir(Path(run_dir), force=overwrite)
            reporter = Reporter(quiet=self.quiet, log_path=folder / "train.log")
            result = prepared.fit(folder, reporter, lens=self.lens)
        except (ValueError, CLIError) as err:
            raise ValueError(f"Forecaster.fit: {err}") from None
        if result.interrupted:
            raise KeyboardInterrupt(result.lines[0])
        self.model, self.metrics, self.run_dir = prepared.forecaster, result.metrics, folder
        self.config = prepared.forecaster.config
        self._cfg = _read_config(folder)
        self._series, self._future, _ = load_data(spec, frame)
        self._frame = frame
        return self

    # ------------------------------------------------------------- predict

    def predict(
        self,
        n: int | None = None,
        future: pd.DataFrame | None = None,
        series: pd.DataFrame | str | os.PathLike[str] | None = None,
    ) -> pd.DataFrame:
        """The ``n`` (default H) forecasts after the end of the history: a DataFrame with
        ``date`` (or ``step``), ``forecast`` (the point forecast, the median with
        quantiles) and one ``q<level>`` column per quantile.

        The history is the fitted data, a loaded run's data file, or ``series`` (a
        DataFrame or CSV path with the training columns). ``future`` holds the
        known-future covariates of the ``n`` rows after it (rounded up to whole blocks
        of H in direct mode; a ``date`` column, when given, must match); default: the
        rows after the last target value in the history's table.
        """
        from .tasks.forecast_run import forecast_frame, run_covariates, run_data

        model = self._require("predict")
        if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
            raise ValueError(f"Forecaster.predict: n must be an integer >= 1, got {n!r}")
        if future is not None and not isinstance(future, pd.DataFrame):
            raise TypeError(
                f"Forecaster.predict: future must be a pandas DataFrame, got {type(future).__name__}"
            )
        spec = dict(self._cfg.get("data") or {})
        try:
            if series is not None:
                frame = self._frame_of(series, "predict")
                if frame is None:
                    hist, rows, cov = run_data(
                        Path(self.run_dir or "."), model, self._cfg, str(series)
                    )
                else:
                    hist, rows, cov = self._frame_data(frame)
            elif self._series is not None:
                hist, rows, cov = self._series, self._future, run_covariates(model)
            else:
                assert self.run_dir is not None
                hist, rows, cov = run_data(self.run_dir, model, self._cfg, None, "series=")
            date = spec.get("date") if isinstance(spec.get("date"), str) else None
            where = "future" if future is not None else "the history's table"
            return forecast_frame(
                model, hist, future if future is not None else rows, cov, n, date, where
            )
        except ValueError as err:
            raise ValueError(f"Forecaster.predict: {err}") from None

    def _frame_data(self, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame | None, Any]:
        from .tasks.forecast_run import load_data, run_covariates

        cov = run_covariates(self.model)
        spec = {
            "source": "frame",
            "target": self.model.target,
            "date": (self._cfg.get("data") or {}).get("date"),
            "covariates": list(cov.past),
            "future_covariates": list(cov.future),
            "calendar": bool(cov.calendar),
            "fill": (self._cfg.get("data") or {}).get("fill"),
        }
        return load_data(spec, frame)

    # ------------------------------------------------------------ backtest

    def backtest(self, folds: int = 3) -> dict[str, Any]:
        """``forecast backtest`` on the fitted data: a fresh model trained and scored on
        each of ``folds`` rolling test blocks; ``{"folds": [...], "mean": {...}}``."""
        from .tasks.forecast_run import backtest_forecast
        from .train import Reporter

        self._require("backtest")
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 1:
            raise ValueError(f"Forecaster.backtest: folds must be an integer >= 1, got {folds!r}")
        spec = dict(self._cfg.get("data") or {})
        if spec.get("source") == "frame" and self._frame is None:
            raise ValueError(
                "Forecaster.backtest: the run was fitted on a DataFrame; fit() it again"
            )
        try:
            result, _ = backtest_forecast(
                spec, self._asked, self.train, folds, Reporter(quiet=self.quiet),
                baselines=self.baselines, frame=self._frame,
            )  # fmt: skip
        except ValueError as err:
            raise ValueError(f"Forecaster.backtest: {err}") from None
        return result

    # ----------------------------------------------------------- save/load

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the run folder (``config.json``, ``model.safetensors``, ``metrics.json``)
        to ``path``; ``Forecaster.load(path)`` and ``forecast predict`` read it back."""
        from .io import save_json_atomic

        model = self._require("save")
        extra = {k: v for k, v in self._cfg.items() if k in ("data", "train", "best_epoch", "task",
                                                              "format_version")}  # fmt: skip
        out = Path(path)
        model.save(out, extra)
        if self.metrics:
            save_json_atomic(out / "metrics.json", self.metrics)
        return out

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> Forecaster:
        """A forecaster from a run folder of ``forecast train`` (or :meth:`save`); bad or
        foreign folders raise ``ValueError``."""
        from .tasks.forecast import Forecaster as Model

        try:
            model, cfg = Model.load(Path(run_dir))
        except ValueError as err:
            raise ValueError(f"Forecaster.load: {err}") from None
        fc = cls(horizon=model.config.horizon)
        fc.config, fc.model, fc._cfg, fc.run_dir = model.config, model, cfg, Path(run_dir)
        fc._asked = model.config
        return fc

    # ------------------------------------------------------------- helpers

    def _require(self, what: str) -> Any:
        if self.model is None:
            raise ValueError(f"Forecaster.{what}: not fitted; call fit() or Forecaster.load()")
        return self.model

    @staticmethod
    def _frame_of(data: Any, what: str) -> pd.DataFrame | None:
        """``data`` as a DataFrame, or None for a path; ``TypeError`` for anything else."""
        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, (str, os.PathLike)):
            return None
        raise TypeError(
            f"Forecaster.{what}: data must be a pandas DataFrame or the path of a CSV file, "
            f"got {type(data).__name__}"
        )


def _read_config(folder: Path) -> dict[str, Any]:
    from .tasks.forecast import Forecaster as Model

    return Model.load(folder)[1]
