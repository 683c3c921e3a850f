"""Forecasting with an LSTM: from a :class:`~lstmlens.data.series.Series` to the next H values.

How the numbers travel (``F`` features: the target ``y`` then the covariates; see
:mod:`~lstmlens.tasks.forecast_norm` for the equations):

1. ``z = log y`` when ``log`` (default: whenever the training rows are all positive);
   covariates unchanged. ``u = (features - mean) / scale`` on the training rows only.
2. With a season ``m`` (from ``season``, the dates' frequency, or detected) and a series
   that passes the M4 seasonality test, seasonal indices ``s`` are estimated on the
   training rows and taken out of the target (``deseasonalise``), as in ES-RNN.
3. A window at origin ``o`` reads ``W`` rows before it (default ``W``: ``LOOKBACK_SEASONS``
   seasons, or 30 steps without a season), relative to its last deseasonalised level,
   and the network predicts the correction to an *anchor* (``DEFAULT_ANCHOR``): the
   mean of the Theta and ARIMA forecasts (``theta_arima``; ETS and Theta past a season
   of ``ANCHOR_ARIMA_MAX_SEASON``), each fitted once in the data's units on the
   training rows, as the baselines are, run forward to every origin (refitted on all
   rows before the test part for forecasting) and encoded like ``u``; the last
   deseasonalised level (``level``; the old ``relative`` mode), seasonal naive, ETS,
   Theta or ETS + Theta on request. A fit that fails or outlasts ``ANCHOR_SECONDS``
   falls back along ``ANCHOR_FALLBACK`` (to seasonal naive, or the level, last).
   ``relative=False`` reads and predicts scaled levels. The head starts at zero, so an
   untrained model is its anchor.
4. ``direct`` mode predicts all ``H`` steps at once (``S = H``); ``recursive`` predicts
   one step (``S = 1``) and feeds its median back ``H`` times. Forecasting more than
   ``S`` steps always rolls forward this way. Past-only covariates are held at their
   last known value when rolling (:meth:`Forecaster.held_note` says so); known-future
   covariates (``future``: columns known in advance, and the ``--calendar`` features)
   take their given values.
   Known-future covariates ``f`` (``K`` columns, model scale) also reach the output
   steps directly: every row of the window carries those of the ``S`` target steps,

       x'[o]_j = [ x[o]_j , f[o], f[o+1], ..., f[o+S-1] ]      j = 0..W-1

   so the input has ``F + S K`` features, and the step the head predicts sees its own
   covariates (a promotion at ``o+h`` can lift output ``h``). Forecasting ``steps``
   values from the end of a series needs ``f`` for the ``ceil(steps / S) S`` rows after
   it (:meth:`Forecaster.future_rows`).
5. ``members`` LSTMs (a seed ensemble) train side by side; the forecast is their median.
   The epoch kept is the one with the lowest loss on the validation part, the rows right
   before the test part. With ``fallback`` the correction is kept only when it cuts the
   anchor's validation MAE below ``FALLBACK_RATIO`` of it over at least
   ``FALLBACK_ORIGINS`` validation origins; otherwise the heads are zeroed and the model
   is its anchor (``kept_correction``, ``correction_ratio`` say which).
6. With quantiles (default 0.1, 0.5, 0.9) the head gives ``Q`` values per step (sorted,
   never crossing); the median is the point forecast. The outer levels are then
   calibrated (split-conformal, :mod:`.forecast_conformal`) on the validation part, or,
   for a bare anchor, on its errors from every origin of the training and validation
   parts, so the nominal 80% interval covers about 80% of new values.

Training windows have origins in ``[max(W, m), train_end)`` (earlier, edge-padded, only
when the training part is too short for that) and targets up to ``train_end``; steps
past it are masked out of the loss, so short series still train on their most recent
rows. The fitted :class:`Forecaster` saves as ``model.safetensors`` + ``config.json``
and loads back to identical predictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.series import Series, season_from_freq
from ..data.windows import Scaler, Split, chronological_split
from ..train import Reporter, TrainConfig, Trainer, TrainResult, load_model, save_model
from ..train.config import seed_everything
from .baselines import detect_season
from .forecast_config import (
    ANCHOR_ARIMA_MAX_SEASON,
    ANCHOR_FALLBACK,
    ANCHOR_MAX_ROWS,
    ANCHOR_MAX_SEASON,
    ANCHOR_SECONDS,
    DEFAULT_ANCHOR,
    FALLBACK_ORIGINS,
    FALLBACK_RATIO,
    LOOKBACK_SEASONS,
    LOOKBACK_STEPS,
    MODES,
    ForecastConfig,
    Prediction,
)
from .forecast_conformal import calibrate, widen
from .forecast_future import blocks_needed, extend, future_block, held_note
from .forecast_model import ForecastNet, ForecastTask, NetConfig, correction_ratio, median_index
from .forecast_norm import (
    STATISTICAL,
    anchors,
    gather,
    inputs,
    is_seasonal,
    seasonal_indices,
    statistical_anchor,
)
from .statistical import OutOfTime

__all__ = ["FORMAT", "LOOKBACK_SEASONS", "MODES", "ForecastConfig", "Forecaster", "Prediction"]

FORMAT = "lstmlens-forecast"


class Forecaster:
    """An LSTM forecaster: ``fit`` on a series, then ``predict_at`` origins or ``forecast`` ahead."""

    def __init__(self, config: ForecastConfig | None = None, future: tuple[str, ...] = ()) -> None:
        self.config = ForecastConfig() if config is None else config
        self.net: ForecastNet | None = None
        self.scaler: Scaler | None = None
        self.target = ""
        self.covariates: tuple[str, ...] = ()
        self.future = tuple(future)  # the covariates known in advance (a subset, in order)
        self.season: int | None = None
        self.indices = np.zeros(1)  # (m,) seasonal indices on the model scale (zeros: none)
        self.calibration: list[float] = []  # per outer level pair: conformal widening
        self.ets_fit_end: int | None = None  # rows the ETS anchor's parameters are fitted on
        self.result: TrainResult | None = None
        self.correction_ratio: float | None = None  # net / anchor validation MAE after fit
        self.kept_correction = True  # False: fit fell back to the bare anchor (``fallback``)
        self._anchor_cache: dict[tuple, np.ndarray] = {}  # the last statistical anchor fit

    # ------------------------------------------------------------ encoding

    @property
    def anchor(self) -> str:
        """The anchor in use (``forecast_norm.ANCHORS``)."""
        if not self.config.relative:
            return "none"
        return self.config.anchor or ("seasonal" if self.season else "level")

    @property
    def history(self) -> int:
        """Rows each forecast reads: the window, and a season for the seasonal anchor."""
        return max(self.config.window or 1, len(self.indices))

    def _check_series(self, series: Series) -> None:
        if self.config.log and not np.all(series.values > 0):
            raise ValueError(
                f"Forecaster: log=True needs positive values, but {series.name!r} has "
                f"minimum {np.nanmin(series.values):g}"
            )
        if series.missing():
            raise ValueError(f"Forecaster: {series.name!r} has missing values; fill them first")

    def _encode(self, series: Series) -> np.ndarray:
        """Model-scale features ``u`` of shape ``(T, F)`` (step 1 of the module doc)."""
        features = series.features.copy()
        if self.config.log:
            features[:, 0] = np.log(features[:, 0])
        assert self.scaler is not None
        return self.scaler.transform(features)

    def _decode(self, u0: np.ndarray) -> np.ndarray:
        """Model-scale target values back to the data's units."""
        assert self.scaler is not None
        z = self.scaler.inverse(u0, feature=0)
        return np.exp(z) if self.config.log else z

    def _net_io(
        self,
        hist: np.ndarray,
        phase: np.ndarray,
        ets: np.ndarray | None = None,
        block: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``(N, W, F + S K)`` and anchors ``(N, S)`` from histories ``(N, L, F)``
        (``ets``: the ETS anchor ``(N, S)`` when that is the anchor; ``block``: the
        known-future covariates of the ``S`` target steps ``(N, S K)``, module doc)."""
        w = self.config.window
        assert w is not None
        x = inputs(hist[:, -w:], phase, self.indices, self.anchor)
        if block is not None and block.shape[1]:
            x = np.concatenate([x, np.repeat(block[:, None, :], x.shape[1], axis=1)], axis=-1)
        a = anchors(hist, phase, self.indices, self.anchor, self.config.out_steps)
        return x, (a if ets is None else a + ets)

    @property
    def future_columns(self) -> list[int]:
        """Feature positions (in ``[y, X]``) of the known-future covariates."""
        return [1 + self.covariates.index(name) for name in self.future]

    def _block(self, u: np.ndarray, origins: np.ndarray) -> np.ndarray | None:
        """Known-future covariates of rows ``o .. o+S-1`` per origin, flattened ``(N, S K)``
        (rows past the end of ``u`` repeat its last row: the lens only); None without."""
        if not self.future:
            return None
        return future_block(u, origins, self.future_columns, self.config.out_steps)

    def future_rows(self, steps: int | None = None) -> int:
        """Rows of known-future covariates a forecast of ``steps`` (default H) values past
        the end needs: ``ceil(steps / S) S``, or 0 without known-future covariates."""
        steps = self.config.horizon if steps is None else steps
        return blocks_needed(steps, self.config.out_steps) if self.future else 0

    @property
    def past_covariates(self) -> tuple[str, ...]:
        """The covariates known only up to the forecast origin."""
        return tuple(c for c in self.covariates if c not in self.future)

    def held_note(
        self, steps: int | None = None, past: tuple[str, ...] | None = None
    ) -> str | None:
        """The line announcing past-only covariates (default: the fitted model's) held at
        their last value, when a forecast of ``steps`` (default H) values rolls past ``S``
        steps; else None."""
        steps = self.config.horizon if steps is None else int(steps)
        past = self.past_covariates if past is None else past
        return held_note(past, steps, self.config.out_steps)

    def _ets(
        self, u: np.ndarray, origins: np.ndarray, steps: int, deadline: float | None = None
    ) -> np.ndarray | None:
        """The statistical anchor ``(N, steps)`` on the model scale, or None for other anchors.

        The models (:func:`~.forecast_norm.statistical_anchor`, fitted on the first
        ``ets_fit_end`` rows) see the series in the data's units, exactly as the baselines
        do; their forecasts are then encoded like the target (log, floored at a thousandth
        of the smallest training value, then standardised). The fit is computed once for
        every origin of ``u`` and cached (fit, predict and evaluation ask for the same
        series many times)."""
        if self.anchor not in STATISTICAL:
            return None
        assert self.ets_fit_end is not None and self.scaler is not None
        key = (self.anchor, self.ets_fit_end, steps, hashlib.sha1(u[:, 0].tobytes()).hexdigest())
        if key not in self._anchor_cache:
            y = self._decode(u[:, 0])
            every = np.arange(1, len(u) + 1)
            a = statistical_anchor(
                y, self.ets_fit_end, every, steps, self.season, self.anchor, deadline
            )
            if self.config.log:
                floor = 1e-3 * float(np.min(y[: self.ets_fit_end]))
                a = np.log(np.maximum(a, floor))
            mean, scale = self.scaler.mean[0], self.scaler.scale[0]
            self._anchor_cache = {key: (a - mean) / scale}
        out = self._anchor_cache[key][np.asarray(origins, dtype=np.int64) - 1]
        if not np.all(np.isfinite(out)):
            raise ValueError(f"Forecaster: the {self.anchor} anchor is not finite")
        return out

    def _training_set(
        self, u: np.ndarray, origins: np.ndarray, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``(N, W, F)`` and target corrections ``(N, S)``, NaN at rows ``>= stop``."""
        s = self.config.out_steps
        hist = gather(u, origins, self.history)
        ets_anchor = self._ets(u, origins, s)
        x, a = self._net_io(hist, origins % len(self.indices), ets_anchor, self._block(u, origins))
        rows = origins[:, None] + np.arange(s)[None, :]  # (N, S)
        y = np.where(rows < stop, u[np.minimum(rows, len(u) - 1), 0], np.nan) - a
        return torch.from_numpy(x).float(), torch.from_numpy(y).float()

    def _origins(self, start: int, stop: int) -> np.ndarray:
        """Origins in ``[first, stop)`` with at least one target before ``stop``; ``first`` is
        ``start``, but no earlier than a full window (when the part leaves ``H`` rows after
        it) and a season: edge-padded windows are for short series only."""
        w, h = self.config.window or 1, self.config.horizon
        first = max(start, len(self.indices), min(w, stop - h), 1)
        return np.arange(first, stop, dtype=np.int64)

    # ----------------------------------------------------------------- fit

    def split(self, series: Series) -> Split:
        """The chronological split this config asks for (``ValueError`` if too short).

        The test part is the last ``test_rows`` rows; validation is right before it.
        """
        c = self.config
        season = c.season or season_from_freq(series.freq) or 1
        need = max(2, season, c.horizon if c.window is None else c.window)
        return chronological_split(len(series), need, c.horizon, c.test_rows, c.val_size,
                                   min_train=need)  # fmt: skip

    def _resolve(self, series: Series, split: Split) -> None:
        """Fill the data-decided settings (season, log, window, deseasonalise, anchor)."""
        c = self.config
        train_y = series.values[: split.train_end]
        self.season = c.season or season_from_freq(series.freq)
        if self.season is None:
            self.season = detect_season(train_y)
        log = bool(np.all(train_y > 0) and np.all(series.values > 0)) if c.log is None else c.log
        m = self.season or 0
        window = c.window or (LOOKBACK_SEASONS * m if m else LOOKBACK_STEPS)
        z = np.log(train_y) if log else train_y
        deseason = is_seasonal(z, m) if c.deseasonalise is None else c.deseasonalise
        beyond = "beyond_season" if m and c.horizon > m else "within_season"
        anchor: str | None = c.anchor or DEFAULT_ANCHOR[beyond]
        too_big = split.train_end > ANCHOR_MAX_ROWS or m > ANCHOR_MAX_SEASON
        if c.anchor is None and anchor in STATISTICAL and too_big:  # a fit would take minutes
            anchor = "level"
        if c.anchor is None and anchor == "theta_arima" and m > ANCHOR_ARIMA_MAX_SEASON:
            anchor = "ets_theta"  # a seasonal ARIMA this long would take a minute or more
        if anchor == "seasonal" and not m:
            anchor = "level"
        self.config = dataclasses.replace(
            c,
            log=log,
            window=window,
            deseasonalise=bool(deseason and m and split.train_end >= 2 * m),
            anchor=anchor or ("seasonal" if m else "level"),  # ETS declined: seasonal naive
        )

    def fit(
        self,
        series: Series,
        train: TrainConfig | None = None,
        split: Split | None = None,
        run_dir: str | Path | None = None,
        reporter: Reporter | None = None,
        resume: bool = False,
        spec: dict[str, Any] | None = None,
    ) -> TrainResult:
        """Fit the scaling on the training rows, then train the network on windows.

        ``spec`` (the run's options) is recorded in the checkpoint and checked on
        resume (:class:`~lstmlens.train.Trainer`).

        Training windows have origins before ``split.train_end`` and targets masked from
        it on; validation windows have origins in ``[train_end, val_end)`` and targets
        masked from ``val_end`` on. The test rows are unused.
        """
        train = TrainConfig() if train is None else train
        split = self.split(series) if split is None else split
        self._resolve(series, split)
        self._check_series(series)
        c = self.config
        self.target, self.covariates = series.name, tuple(series.covariate_names)
        unknown = [name for name in self.future if name not in self.covariates]
        if unknown:
            raise ValueError(
                f"Forecaster: future covariates {unknown} are not among the series' "
                f"covariates {list(self.covariates)}"
            )
        self.future = tuple(name for name in self.covariates if name in self.future)
        raw = series.features.copy()
        if c.log:
            raw[:, 0] = np.log(raw[:, 0])
        self.scaler = Scaler.fit(raw[: split.train_end])  # training rows only
        u = self._encode(series)
        m = self.season or 1
        self.ets_fit_end = split.train_end
        for anchor in ANCHOR_FALLBACK.get(self.anchor, ()):  # the first that fits in time
            c = self.config = dataclasses.replace(c, anchor=anchor)
            if anchor not in STATISTICAL:
                break
            try:
                deadline = time.monotonic() + ANCHOR_SECONDS
                self._ets(u, np.array([split.train_end]), c.out_steps, deadline)
                break
            except (ValueError, OutOfTime, ArithmeticError, np.linalg.LinAlgError, LookupError):
                continue
        if self.anchor == "seasonal" and m < 2:
            c = self.config = dataclasses.replace(c, anchor="level")
        self.indices = (
            seasonal_indices(u[: split.train_end, 0], m)
            if c.deseasonalise
            else np.zeros(m if self.anchor == "seasonal" else 1)
        )
        x_tr, y_tr = self._training_set(u, self._origins(0, split.train_end), split.train_end)
        val_origins = self._origins(split.train_end, split.val_end)
        x_va, y_va = self._training_set(u, val_origins, split.val_end)
        seed_everything(train.seed)
        self.net = ForecastNet(self.net_config(series))
        task = ForecastTask(
            x_tr,
            y_tr,
            x_va,
            y_va,
            quantiles=c.quantiles,
            batch_size=c.batch_for(len(x_tr)),
            val_scale=None if c.log else float(self.scaler.scale[0]),
        )
        trainer = Trainer(self.net, task, train, run_dir=run_dir, reporter=reporter, spec=spec)
        self.result = trainer.fit(resume=resume)
        self.net.eval()
        self.correction_ratio = correction_ratio(self.net, x_va, y_va, c.quantiles)
        x_cal, y_cal = x_va, y_va  # the net's errors are honest on validation only
        # covariates carry what the anchor cannot see: then the validation ratio alone decides
        enough = len(val_origins) >= FALLBACK_ORIGINS or bool(series.covariate_names)
        trusted = enough and self.correction_ratio < FALLBACK_RATIO
        self.kept_correction = trusted or not c.fallback or not c.relative
        if not self.kept_correction:
            self.net.zero_heads()  # the net did not beat its anchor clearly on validation
            x_cal, y_cal = torch.cat([x_tr, x_va]), torch.cat([y_tr, y_va])  # the anchor's
        self.calibration = []
        if c.quantiles and c.calibrate:
            with torch.no_grad():
                q = np.sort(self.net(x_cal).double().numpy(), axis=-1)  # (N, S, Q) corrections
            self.calibration = calibrate(q, y_cal.double().numpy(), c.quantiles)
        self.ets_fit_end = split.val_end  # forecasts: ETS refitted on every row before the test
        return self.result

    def net_config(self, series: Series) -> NetConfig:
        c = self.config
        known = sum(name in self.future for name in series.covariate_names)
        return NetConfig(
            input_size=1 + len(series.covariate_names) + c.out_steps * known,
            hidden_size=c.hidden_size,
            num_layers=c.num_layers,
            variant=c.variant,
            dropout=c.dropout,
            out_steps=c.out_steps,
            n_outputs=max(1, len(c.quantiles)),
            members=c.members,
            zero_head=c.relative,
            layer_norm=c.layer_norm,
            zoneout=c.zoneout,
            recurrent_dropout=c.recurrent_dropout,
            proj_size=c.proj_size,
            forget_bias=c.forget_bias,
        )

    # ------------------------------------------------------------- predict

    def _require_fitted(self) -> ForecastNet:
        if self.net is None or self.scaler is None:
            raise ValueError("Forecaster: not fitted; call fit() or Forecaster.load() first")
        return self.net

    @torch.no_grad()
    def predict_at(
        self,
        series: Series,
        origins: np.ndarray,
        steps: int | None = None,
        future: np.ndarray | None = None,
    ) -> Prediction:
        """Forecast ``steps`` (default H) values from each origin, reading only rows before it.

        ``origins`` are row positions in ``series`` (``1 <= o <= len(series)``; rows before
        the start are edge-padded). ``future`` ``(R, K)``: the known-future covariates of
        the ``R`` rows after the end of ``series`` (data units, in the order of
        ``self.future``). The forecast from ``o`` reads them up to row
        ``o + future_rows(steps)``; rows past the end repeat the last one (scoring a last
        test block that the series cuts short; :meth:`forecast` asks for them all).
        """
        net = self._require_fitted()
        c = self.config
        steps = c.horizon if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"Forecaster.predict_at: steps must be >= 1, got {steps}")
        if series.covariate_names != self.covariates:
            raise ValueError(
                f"Forecaster: the model reads covariates {list(self.covariates)}, "
                f"the series has {list(series.covariate_names)}"
            )
        self._check_series(series)
        net.eval()
        origins = np.asarray(origins, dtype=np.int64)
        if len(origins) and (origins.min() < 1 or origins.max() > len(series)):
            raise ValueError(
                f"Forecaster.predict_at: origins must lie in [1, {len(series)}], "
                f"got [{origins.min()}, {origins.max()}]"
            )
        u = self._extend(self._encode(series), future)
        hist = gather(u, origins, self.history)  # (N, L, F) model scale
        s = c.out_steps
        ets_all = self._ets(u, origins, -(-steps // s) * s)  # (N, >= steps) or None
        median = median_index(c.quantiles)
        blocks: list[np.ndarray] = []
        done = 0
        while done < steps:
            ets_block = None if ets_all is None else ets_all[:, done : done + s]
            at = origins + done
            x, a = self._net_io(hist, at % len(self.indices), ets_block, self._block(u, at))
            out = net(torch.from_numpy(x).float()).double().numpy()  # (N, S, Q)
            out = (np.sort(out, axis=-1) + a[..., None])[:, : steps - done]
            blocks.append(out)
            new = np.repeat(hist[:, -1:, :], out.shape[1], axis=1)  # past covariates held
            new[..., 0] = out[..., median]
            if self.future:  # known-future covariates take their values
                rows = np.minimum(at[:, None] + np.arange(out.shape[1]), len(u) - 1)  # (N, n)
                new[..., self.future_columns] = u[rows][..., self.future_columns]
            hist = np.concatenate([hist, new], axis=1)[:, -self.history :]
            done += out.shape[1]
        u = np.concatenate(blocks, axis=1)  # (N, steps, Q)
        if self.calibration:
            u = widen(u, self.calibration)
        q = self._decode(u)
        if not c.quantiles:
            return Prediction(point=q[..., 0])
        return Prediction(point=q[..., median], quantiles=q, levels=c.quantiles)

    def _extend(self, u: np.ndarray, future: np.ndarray | None) -> np.ndarray:
        """``u`` ``(T, F)`` with the known-future rows ``future`` after it (model scale;
        :func:`.forecast_future.extend`)."""
        if not self.future:
            return u
        assert self.scaler is not None
        return extend(u, future, self.future_columns, self.scaler.mean, self.scaler.scale,
                      self.future)  # fmt: skip

    def inputs(self, series: Series, origins: np.ndarray | None = None) -> torch.Tensor:
        """The exact tensor ``(N, W, F)`` the network reads at ``origins`` (default: the end).

        For looking inside the model, e.g. ``lstmlens.inspect(fc.net.lstm, fc.inputs(s))``.
        """
        self._require_fitted()
        origins = np.array([len(series)]) if origins is None else np.asarray(origins)
        origins = origins.astype(np.int64)
        u = self._encode(series)
        hist = gather(u, origins, self.history)
        x, _ = self._net_io(hist, origins % len(self.indices), None, self._block(u, origins))
        return torch.from_numpy(x).float()

    def forecast(
        self, series: Series, steps: int | None = None, future: np.ndarray | None = None
    ) -> Prediction:
        """Forecast the ``steps`` values after the end of ``series`` (one origin; ``future``:
        the known-future covariates of the ``future_rows(steps)`` rows after it)."""
        window = self.config.window or 1
        if len(series) < window:
            raise ValueError(
                f"Forecaster.forecast: need at least window={window} rows, got {len(series)}"
            )
        steps = self.config.horizon if steps is None else int(steps)
        given, need = (0 if future is None else len(future)), self.future_rows(steps)
        if given < need:
            raise ValueError(
                f"Forecaster: the future covariates {', '.join(self.future)} are needed for "
                f"{need} row(s) after the end of the series; {given} given"
            )
        return self.predict_at(series, np.array([len(series)]), steps, future)

    # ----------------------------------------------------------- save/load

    def to_dict(self) -> dict[str, Any]:
        """The JSON side of a saved model (rebuilds the net and the scaling)."""
        net = self._require_fitted()
        assert self.scaler is not None
        return {
            "format": FORMAT,
            "version": 2,
            "net": net.config.to_dict(),
            "forecast": self.config.to_dict(),
            "scaler": self.scaler.to_dict(),
            "target": self.target,
            "covariates": list(self.covariates),
            "future_covariates": list(self.future),
            "season": self.season,
            "seasonal_indices": self.indices.tolist(),
            "calibration": list(self.calibration),
            "ets_fit_end": self.ets_fit_end,
        }

    def save(self, run_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (plus ``extra`` keys) atomically."""
        return save_model(run_dir, self._require_fitted(), {**self.to_dict(), **(extra or {})})

    @classmethod
    def load(cls, run_dir: str | Path) -> tuple[Forecaster, dict[str, Any]]:
        """Load a saved forecaster; returns it and the whole ``config.json``.

        A missing or corrupt file, or a run folder of another kind, raise ``ValueError``.
        Runs saved before version 2 load with their old meaning (no seasonal indices,
        no calibration, the last value as anchor).
        """
        where = Path(run_dir) / "config.json"

        def build(cfg: dict[str, Any]) -> ForecastNet:
            if cfg.get("format") != FORMAT:
                raise ValueError(f"{where}: not a forecast run (format {cfg.get('format')!r})")
            try:
                return ForecastNet(NetConfig(**cfg["net"]))
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{where}: bad model description ({err})") from None

        net, cfg = load_model(run_dir, build)
        try:
            forecast = dict(cfg["forecast"])
            if cfg.get("version", 1) < 2:  # the old meaning of an anchored run
                forecast.update(anchor="level", deseasonalise=False, members=1, calibrate=False)
            fc = cls(ForecastConfig(**forecast))
            fc.scaler = Scaler.from_dict(cfg["scaler"])
            fc.target = str(cfg["target"])
            fc.covariates = tuple(str(c) for c in cfg["covariates"])
            fc.future = tuple(str(c) for c in cfg.get("future_covariates", []))
            fc.season = cfg["season"]
            fc.indices = np.asarray(cfg.get("seasonal_indices", [0.0]), dtype=np.float64)
            fc.calibration = [float(v) for v in cfg.get("calibration", [])]
            fc.ets_fit_end = cfg.get("ets_fit_end")
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: incomplete forecast config ({err})") from None
        if not set(fc.future) <= set(fc.covariates):
            raise ValueError(f"{where}: future_covariates must be among the covariates")
        if fc.config.window is None:  # resolved from the season before any run is saved
            raise ValueError(f"{where}: forecast.window is missing")
        known = len(fc.future) * fc.config.out_steps
        if len(fc.scaler.mean) != 1 + len(fc.covariates) or (
            len(fc.scaler.mean) + known != net.config.input_size
        ):
            raise ValueError(f"{where}: scaler and model disagree on the number of features")
        if fc.indices.ndim != 1 or len(fc.indices) < 1:
            raise ValueError(f"{where}: seasonal_indices must be a non-empty list")
        fc.net = net
        return fc, cfg
