"""What a forecast is asked for (:class:`ForecastConfig`) and what it gives (:class:`Prediction`).

The defaults are the ones ``lstmlens forecast train`` uses; ``None`` fields are decided
from the data when the :class:`~lstmlens.tasks.forecast.Forecaster` is fitted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .forecast_norm import ANCHORS

__all__ = [
    "ANCHOR_MAX_ROWS",
    "ANCHOR_ARIMA_MAX_SEASON",
    "ANCHOR_FALLBACK",
    "ANCHOR_MAX_SEASON",
    "ANCHOR_SECONDS",
    "DEFAULT_ANCHOR",
    "FALLBACK_ORIGINS",
    "FALLBACK_RATIO",
    "LOOKBACK_SEASONS",
    "LOOKBACK_STEPS",
    "MODES",
    "ForecastConfig",
    "Prediction",
]

MODES = ("direct", "recursive")
#: Default lookback in seasons (chosen on half A of the M3 benchmark sample).
LOOKBACK_SEASONS = 3
#: Default anchor by whether the horizon reaches past one season, chosen on half A of the
#: M3 benchmark sample only (``benchmarks/anchor_choice.py --half A``: beats seasonal naive
#: / mean MASE; quarterly: theta_arima 78% / 1.084, ets_theta 74% / 1.164, Theta 78% /
#: 1.183, ETS 68% / 1.305; monthly: theta_arima 82% / 0.624, ets_theta 76% / 0.657, ARIMA
#: 84% / 0.620): the mean of Theta and ARIMA either way.
DEFAULT_ANCHOR = {"within_season": "theta_arima", "beyond_season": "theta_arima"}
#: What a statistical anchor falls back to, in order, when its fit fails or runs out of time
#: (``seasonal`` becomes ``level`` without a season).
ANCHOR_FALLBACK = {
    "ets": ("ets", "seasonal"),
    "theta": ("theta", "seasonal"),
    "ets_theta": ("ets_theta", "theta", "seasonal"),
    "theta_arima": ("theta_arima", "ets_theta", "theta", "seasonal"),
}
#: Past this season the default anchor is ``ets_theta``, not ``theta_arima``: a seasonal
#: ARIMA on a longer season takes a minute or more (weekly co2, m = 52: 63 s).
ANCHOR_ARIMA_MAX_SEASON = 24
#: Seconds the statistical anchor's fits may take before the next anchor is tried.
ANCHOR_SECONDS = 60.0
#: Past these training rows or this season the default statistical anchor is declined (the
#: deseasonalised last level instead): one ETS fit there can take minutes (the baselines
#: likewise fit on at most 2000 rows and decline seasons over 52).
ANCHOR_MAX_ROWS = 5000
ANCHOR_MAX_SEASON = 52
#: The net's correction is kept only when its validation MAE is below this share of its
#: anchor's, measured from at least ``FALLBACK_ORIGINS`` validation origins (``fallback``);
#: otherwise the forecast is the bare anchor. On half A of the M3 sample (8 or 12
#: validation origins) no share kept a correction that helped on the test part. With
#: covariates (which the anchor cannot see) the share alone decides.
FALLBACK_RATIO = 0.9
FALLBACK_ORIGINS = 30
#: Default lookback without a season (the classic "previous 30 steps").
LOOKBACK_STEPS = 30


@dataclass
class ForecastConfig:
    """The forecasting problem and the model (training itself is a ``TrainConfig``).

    ``None`` means "decided from the data at fit time" (the resolved value is saved).
    """

    window: int | None = None  # W: past steps read (None: LOOKBACK_SEASONS seasons, or 30)
    horizon: int = 1  # H: steps forecast from each origin
    mode: str = "direct"  # "direct" (H outputs) or "recursive" (1 output, fed back)
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # pinball loss, intervals; 0.5 added
    hidden_size: int = 32  # LSTM units per layer
    num_layers: int = 1  # stacked LSTM layers
    variant: str = "vanilla"  # lstmlens variant preset
    dropout: float = 0.0  # between stacked layers
    log: bool | None = None  # model log(y) (None: when the training rows are all > 0)
    relative: bool = True  # anchored forecast, inputs relative to the last level
    anchor: str | None = None  # level | seasonal | a statistical one (None: DEFAULT_ANCHOR)
    deseasonalise: bool | None = None  # take seasonal indices out (None: M4 seasonality test)
    members: int = 3  # LSTMs in the seed ensemble (median)
    fallback: bool = True  # keep the bare anchor when the net does not beat it on validation
    calibrate: bool = True  # conformal calibration of the interval on the validation part
    batch_size: int | None = None  # windows per step (None: 64)
    val_size: int | None = None  # validation rows (default 10%, at least H)
    test_origins: int = 1  # k: the test part is the last k * H rows, forecast from k origins
    test_size: int | None = None  # test rows instead of k * H (the last origin may be partial)
    season: int | None = None  # seasonal period (None: from freq or data)
    layer_norm: bool = False  # lstmlens.LSTM options (see lstmlens.LSTM)
    zoneout: float = 0.0
    recurrent_dropout: float = 0.0
    proj_size: int = 0
    forget_bias: float = 0.0

    def __post_init__(self) -> None:
        self.quantiles = tuple(float(q) for q in self.quantiles)

        def bad(name: str, expected: str) -> ValueError:
            return ValueError(
                f"ForecastConfig: {name} must be {expected}, got {getattr(self, name)!r}"
            )

        optional = ("window", "batch_size")
        for name in ("window", "horizon", "hidden_size", "num_layers", "batch_size", "members",
                     "test_origins"):  # fmt: skip
            value = getattr(self, name)
            if (value is not None or name not in optional) and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
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
        if self.anchor is not None and (self.anchor not in ANCHORS or self.anchor == "none"):
            raise bad("anchor", f"None or one of {[a for a in ANCHORS if a != 'none']}")
        for name in ("val_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise bad(name, "None or an integer >= 1")
        if self.test_size is not None and self.test_size < self.horizon:
            raise bad("test_size", f"at least the horizon ({self.horizon})")
        if self.season is not None and (not isinstance(self.season, int) or self.season < 2):
            raise bad("season", "None or an integer >= 2")

    def batch_for(self, windows: int) -> int:
        """Windows per step: ``batch_size``, or 64 (all of a short series' windows: one step
        an epoch keeps per-series training to seconds; measured on the M3 sample)."""
        return self.batch_size if self.batch_size is not None else min(64, max(1, windows))

    @property
    def out_steps(self) -> int:
        """S: outputs per forward pass."""
        return self.horizon if self.mode == "direct" else 1

    @property
    def test_rows(self) -> int:
        """Rows in the test part: ``test_size``, else ``test_origins * horizon``."""
        return self.test_size if self.test_size is not None else self.test_origins * self.horizon

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
