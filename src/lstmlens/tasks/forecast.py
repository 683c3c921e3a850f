"""Forecasting with an LSTM: from a :class:`~lstmlens.data.series.Series` to the next H values.

How the numbers travel (``F`` features: the target ``y`` then the covariates):

1. ``z = log y`` when ``log=True`` (else ``z = y``); covariates unchanged.
2. ``u = (features - mean) / scale``, with mean and scale fitted on the training rows only.
3. A window at origin ``o`` reads ``u[o-W:o]``; with ``relative=True`` (default) the
   target column is taken relative to the last known value ``b = u[o-1, 0]``, and the
   model predicts ``u[o:o+S, 0] - b``: changes, not levels, so a trend that leaves the
   training range does not leave the model's.
4. ``direct`` mode predicts all ``H`` steps at once (``S = H``); ``recursive`` predicts
   one step (``S = 1``) and feeds its median back ``H`` times. Forecasting more than
   ``S`` steps always rolls forward this way; covariates are past-only, so they are held
   at their last known value when rolling.
5. With quantiles the head gives ``Q`` values per step (sorted, so they never cross);
   the median (0.5 is always among the levels) is the point forecast and the outer
   levels bound the interval.

The fitted :class:`Forecaster` saves as ``model.safetensors`` + ``config.json`` (weights
and the scaler, target, window, ...) and loads back to identical predictions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.series import Series, season_from_freq
from ..data.windows import Scaler, Split, chronological_split, make_windows, window_origins
from ..train import Reporter, TrainConfig, Trainer, TrainResult, load_model, save_model
from ..train.config import seed_everything
from .baselines import detect_season
from .forecast_model import ForecastNet, ForecastTask, NetConfig, median_index

__all__ = ["FORMAT", "MODES", "ForecastConfig", "Forecaster", "Prediction"]

FORMAT = "lstmlens-forecast"
MODES = ("direct", "recursive")


@dataclass
class ForecastConfig:
    """The forecasting problem and the model (training itself is a ``TrainConfig``)."""

    window: int = 30  # W: past steps the model reads
    horizon: int = 1  # H: steps forecast from each origin
    mode: str = "direct"  # "direct" (H outputs) or "recursive" (1 output, fed back)
    quantiles: tuple[float, ...] = ()  # e.g. (0.1, 0.9): pinball loss, intervals; 0.5 added
    hidden_size: int = 32  # LSTM units per layer
    num_layers: int = 1  # stacked LSTM layers
    variant: str = "vanilla"  # lstmlens variant preset
    dropout: float = 0.0  # between stacked layers
    log: bool = False  # model log(y) (needs y > 0): multiplicative growth and seasons
    relative: bool = True  # target column relative to the window's last value
    batch_size: int | None = None  # windows per step (None: 64, fewer for short series)
    val_size: int | None = None  # validation rows (default 10%, at least H)
    test_size: int | None = None  # test rows (default 10%, at least H)
    season: int | None = None  # seasonal period for baselines/MASE (None: from freq or data)

    def __post_init__(self) -> None:
        self.quantiles = tuple(float(q) for q in self.quantiles)

        def bad(name: str, expected: str) -> ValueError:
            return ValueError(
                f"ForecastConfig: {name} must be {expected}, got {getattr(self, name)!r}"
            )

        for name in ("window", "horizon", "hidden_size", "num_layers", "batch_size"):
            value = getattr(self, name)
            if (value is not None or name != "batch_size") and (
                not isinstance(value, int) or value < 1
            ):
                raise bad(name, "an integer >= 1")
        if self.mode not in MODES:
            raise bad("mode", "'direct' or 'recursive'")
        qs = self.quantiles
        if any(not 0 < q < 1 for q in qs) or len(set(qs)) != len(qs) or list(qs) != sorted(qs):
            raise bad("quantiles", "distinct increasing levels strictly between 0 and 1")
        if qs and 0.5 not in qs:  # the median is the point forecast
            self.quantiles = tuple(sorted({*qs, 0.5}))
        if not 0 <= self.dropout < 1:
            raise bad("dropout", "in [0, 1)")
        for name in ("val_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise bad(name, "None or an integer >= 1")
        if self.season is not None and (not isinstance(self.season, int) or self.season < 2):
            raise bad("season", "None or an integer >= 2")

    def batch_for(self, windows: int) -> int:
        """Windows per step: ``batch_size``, or by default 64, cut for short series so that
        an epoch takes at least 8 steps (but never below 16 windows)."""
        if self.batch_size is not None:
            return self.batch_size
        return min(64, max(16, windows // 8))

    @property
    def out_steps(self) -> int:
        """S: outputs per forward pass."""
        return self.horizon if self.mode == "direct" else 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["quantiles"] = list(self.quantiles)
        return d


@dataclass
class Prediction:
    """Forecasts from ``N`` origins over ``steps`` steps, in the units of the data."""

    point: np.ndarray  # (N, steps)
    quantiles: np.ndarray | None = None  # (N, steps, Q), sorted along Q
    levels: tuple[float, ...] = ()  # the Q quantile levels

    @property
    def lower(self) -> np.ndarray | None:
        """The lowest quantile ``(N, steps)``, or None without quantiles."""
        return None if self.quantiles is None else self.quantiles[..., 0]

    @property
    def upper(self) -> np.ndarray | None:
        """The highest quantile ``(N, steps)``, or None without quantiles."""
        return None if self.quantiles is None else self.quantiles[..., -1]


class Forecaster:
    """An LSTM forecaster: ``fit`` on a series, then ``predict_at`` origins or ``forecast`` ahead."""

    def __init__(self, config: ForecastConfig | None = None) -> None:
        self.config = ForecastConfig() if config is None else config
        self.net: ForecastNet | None = None
        self.scaler: Scaler | None = None
        self.target = ""
        self.covariates: tuple[str, ...] = ()
        self.season: int | None = None
        self.result: TrainResult | None = None

    # ------------------------------------------------------------ encoding

    def _check_series(self, series: Series) -> None:
        if self.config.log and not np.all(series.values > 0):
            raise ValueError(
                f"Forecaster: log=True needs positive values, but {series.name!r} has "
                f"minimum {np.nanmin(series.values):g}"
            )
        if series.missing():
            raise ValueError(f"Forecaster: {series.name!r} has missing values; fill them first")

    def _encode(self, series: Series) -> np.ndarray:
        """Model-scale features ``u`` of shape ``(T, F)`` (steps 1-2 of the module doc)."""
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

    def _windows(self, u: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``(N, W, F)`` (relative when configured) and the bases ``(N,)``."""
        x, _ = make_windows(u, u[:, 0], origins, self.config.window, 0)
        base = u[origins - 1, 0] if self.config.relative else np.zeros(len(origins))
        x = x.copy()
        x[..., 0] -= base[:, None]
        return x, base

    def _training_set(self, u: np.ndarray, origins: np.ndarray) -> tuple[torch.Tensor, ...]:
        s = self.config.out_steps
        x, base = self._windows(u, origins)
        _, y = make_windows(u, u[:, 0], origins, self.config.window, s)  # (N, S)
        return torch.from_numpy(x).float(), torch.from_numpy(y - base[:, None]).float()

    # ----------------------------------------------------------------- fit

    def split(self, series: Series) -> Split:
        """The chronological split this config asks for (``ValueError`` if too short)."""
        c = self.config
        return chronological_split(len(series), c.window, c.horizon, c.test_size, c.val_size)

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
        """Fit the scaler on the training rows, then train the network on windows.

        ``spec`` (the run's options) is recorded in the checkpoint and checked on
        resume (:class:`~lstmlens.train.Trainer`).

        Training windows have all targets before ``split.train_end``; validation
        windows have origins in ``[train_end, val_end - S]``. The test rows are unused.
        """
        train = TrainConfig() if train is None else train
        self._check_series(series)
        split = self.split(series) if split is None else split
        c = self.config
        self.target, self.covariates = series.name, tuple(series.covariate_names)
        self.season = c.season or season_from_freq(series.freq)
        if self.season is None:
            self.season = detect_season(series.values[: split.train_end])
        raw = series.features.copy()
        if c.log:
            raw[:, 0] = np.log(raw[:, 0])
        self.scaler = Scaler.fit(raw[: split.train_end])  # training rows only
        u = self._encode(series)
        s = c.out_steps
        x_tr, y_tr = self._training_set(u, window_origins(0, split.train_end, c.window, s))
        x_va, y_va = self._training_set(
            u, window_origins(split.train_end, split.val_end, c.window, s)
        )
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
        return self.result

    def net_config(self, series: Series) -> NetConfig:
        c = self.config
        return NetConfig(
            input_size=1 + len(series.covariate_names),
            hidden_size=c.hidden_size,
            num_layers=c.num_layers,
            variant=c.variant,
            dropout=c.dropout,
            out_steps=c.out_steps,
            n_outputs=max(1, len(c.quantiles)),
        )

    # ------------------------------------------------------------- predict

    def _require_fitted(self) -> ForecastNet:
        if self.net is None or self.scaler is None:
            raise ValueError("Forecaster: not fitted; call fit() or Forecaster.load() first")
        return self.net

    @torch.no_grad()
    def predict_at(
        self, series: Series, origins: np.ndarray, steps: int | None = None
    ) -> Prediction:
        """Forecast ``steps`` (default H) values from each origin, reading only rows before it.

        ``origins`` are row positions in ``series`` (``window <= o <= len(series)``).
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
        u = self._encode(series)
        win, _ = make_windows(u, u[:, 0], origins, c.window, 0)  # (N, W, F) absolute scale
        median = median_index(c.quantiles)
        blocks = []
        while sum(b.shape[1] for b in blocks) < steps:
            x = win.copy()
            base = x[:, -1, 0].copy() if c.relative else np.zeros(len(x))
            x[..., 0] -= base[:, None]
            out = net(torch.from_numpy(x).float()).double().numpy()  # (N, S, Q)
            out = np.sort(out, axis=-1) + base[:, None, None]
            out = out[:, : steps - sum(b.shape[1] for b in blocks)]
            blocks.append(out)
            new = np.repeat(win[:, -1:, :], out.shape[1], axis=1)  # covariates held
            new[..., 0] = out[..., median]
            win = np.concatenate([win, new], axis=1)[:, -c.window :]
        q = self._decode(np.concatenate(blocks, axis=1))  # (N, steps, Q)
        if not c.quantiles:
            return Prediction(point=q[..., 0])
        return Prediction(point=q[..., median], quantiles=q, levels=c.quantiles)

    def inputs(self, series: Series, origins: np.ndarray | None = None) -> torch.Tensor:
        """The exact tensor ``(N, W, F)`` the network reads at ``origins`` (default: the end).

        For looking inside the model, e.g. ``lstmlens.inspect(fc.net.lstm, fc.inputs(s))``.
        """
        self._require_fitted()
        origins = np.array([len(series)]) if origins is None else np.asarray(origins)
        x, _ = self._windows(self._encode(series), origins.astype(np.int64))
        return torch.from_numpy(x).float()

    def forecast(self, series: Series, steps: int | None = None) -> Prediction:
        """Forecast the ``steps`` values after the end of ``series`` (one origin)."""
        if len(series) < self.config.window:
            raise ValueError(
                f"Forecaster.forecast: need at least window={self.config.window} rows, "
                f"got {len(series)}"
            )
        return self.predict_at(series, np.array([len(series)]), steps)

    # ----------------------------------------------------------- save/load

    def to_dict(self) -> dict[str, Any]:
        """The JSON side of a saved model (rebuilds the net and the scaling)."""
        net = self._require_fitted()
        assert self.scaler is not None
        return {
            "format": FORMAT,
            "version": 1,
            "net": net.config.to_dict(),
            "forecast": self.config.to_dict(),
            "scaler": self.scaler.to_dict(),
            "target": self.target,
            "covariates": list(self.covariates),
            "season": self.season,
        }

    def save(self, run_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (plus ``extra`` keys) atomically."""
        return save_model(run_dir, self._require_fitted(), {**self.to_dict(), **(extra or {})})

    @classmethod
    def load(cls, run_dir: str | Path) -> tuple[Forecaster, dict[str, Any]]:
        """Load a saved forecaster; returns it and the whole ``config.json``.

        A missing or corrupt file, or a run folder of another kind, raise ``ValueError``.
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
            fc = cls(ForecastConfig(**cfg["forecast"]))
            fc.scaler = Scaler.from_dict(cfg["scaler"])
            fc.target = str(cfg["target"])
            fc.covariates = tuple(cfg["covariates"])
            fc.season = cfg["season"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: incomplete forecast config ({err})") from None
        if len(fc.scaler.mean) != net.config.input_size:
            raise ValueError(f"{where}: scaler and model disagree on the number of features")
        fc.net = net
        return fc, cfg
