"""Multiplicative seasonal indices per series, as the Theta method deseasonalises.

For each series ``i`` of a panel, on its training rows ``y_i[0 : train_end[i]]`` only
(season ``m``, ``n`` training rows, ``rho_k`` the autocorrelation at lag ``k``):

1. **Test** (Theta's 90% test): seasonal when ``n rho_m^2 / sum_{k<m} rho_k^2 > 1.645^2``,
   the series positive and ``n >= 2 m``; otherwise its index is all ones.
2. **Index** (classical multiplicative decomposition): the ratio of ``y`` to its centred
   ``2 x m`` moving average, averaged by phase ``t mod m`` and normalised to mean 1,
   ``s_i`` of shape ``(m,)``; phase 0 is the series' first row.

The network then sees ``y_i[t] / s_i[t mod m]`` and its forecasts are multiplied back by
``s_i[(o + h) mod m]`` for an origin ``o`` and step ``h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.panel import Panel

__all__ = ["SeasonalIndex"]

#: 1.645^2: the 10% critical value of chi2(1), Theta's seasonality test.
_CRITICAL = 2.705543454095404


def _index(y: np.ndarray, m: int) -> np.ndarray:
    """The multiplicative seasonal index ``(m,)`` of one positive series, or ones."""
    n = len(y)
    if m < 2 or n < 2 * m or np.any(y <= 0) or not np.all(np.isfinite(y)):
        return np.ones(m)
    d = y - y.mean()
    rho = np.array([d[k:] @ d[: n - k] for k in range(m + 1)]) / max(d @ d, 1e-300)
    if n * rho[m] ** 2 / np.sum(rho[:m] ** 2) <= _CRITICAL:
        return np.ones(m)
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, weights, mode="valid")  # centred, (n - 2 * (len(w) // 2),)
    lead = len(weights) // 2
    ratio = y[lead : lead + len(trend)] / trend
    phase = np.arange(lead, lead + len(trend)) % m
    s = np.bincount(phase, ratio, minlength=m) / np.bincount(phase, minlength=m)
    return s / s.mean()


@dataclass(frozen=True)
class SeasonalIndex:
    """``index`` ``(N, m)``: series ``i``'s factor at phase ``p`` is ``index[i, p]``."""

    index: np.ndarray

    @classmethod
    def fit(cls, panel: Panel, train_end: np.ndarray, season: int) -> SeasonalIndex:
        """Test and estimate every series on its rows ``[0, train_end[i])`` only."""
        if season < 1:
            raise ValueError(f"SeasonalIndex.fit: season must be >= 1, got {season}")
        rows = [_index(panel.series(i)[: int(train_end[i])], season) for i in range(len(panel))]
        return cls(np.stack(rows) if rows else np.ones((0, season)))

    @property
    def season(self) -> int:
        return int(self.index.shape[1])

    def flat(self, panel: Panel) -> np.ndarray:
        """The factor of every row of the panel, shape ``(sum T_i,)``."""
        which = np.repeat(np.arange(len(panel)), panel.lengths)
        position = np.arange(len(panel.values)) - panel.offsets[which]
        return self.index[which, position % self.season]

    def factors(self, series: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Factors of the ``horizon`` steps after each origin, shape ``(B, horizon)``."""
        phase = (np.asarray(origins)[:, None] + np.arange(horizon)) % self.season
        return self.index[np.asarray(series)[:, None], phase]

    def to_dict(self) -> dict[str, list[list[float]]]:
        return {"index": self.index.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[list[float]]]) -> SeasonalIndex:
        return cls(np.asarray(d["index"], dtype=np.float64))
