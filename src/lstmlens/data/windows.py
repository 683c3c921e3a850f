"""Lookback windows, chronological splits and a scaler fitted on the training rows only.

Notation: a series of ``T`` steps with ``F`` input features per step (the target
first, then covariates). A window with *origin* ``o`` reads the ``W`` rows
``[o - W, o)`` and its targets are the ``H`` values ``y[o], ..., y[o + H - 1]``:

    X[n] = features[o_n - W : o_n]          # (W, F)
    Y[n] = y[o_n : o_n + H]                 # (H,)

The split is chronological: rows ``[0, train_end)`` train, ``[train_end, val_end)``
validate, ``[val_end, T)`` test. The forecast evaluation protocol: the test part is
the last ``k x H`` rows (``k`` test origins stepping by ``H``, so every test row is
scored once and the most recent rows always are), validation the part right before it.
Training windows have every target before
``train_end``; a validation (test) window's origin lies in the validation (test)
part, and its inputs may reach back into the earlier parts, as they would in use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Scaler",
    "Split",
    "backtest_splits",
    "chronological_split",
    "make_windows",
    "window_origins",
]


@dataclass(frozen=True)
class Split:
    """Chronological split of ``n`` rows: train ``[0, train_end)``, validation
    ``[train_end, val_end)``, test ``[val_end, n)``."""

    train_end: int
    val_end: int
    n: int

    @property
    def val_size(self) -> int:
        return self.val_end - self.train_end

    @property
    def test_size(self) -> int:
        return self.n - self.val_end


def _default_part(n: int, horizon: int) -> int:
    """Default validation/test size: 10% of the rows, at least one horizon."""
    return max(horizon, int(round(0.1 * n)))


def chronological_split(
    n: int,
    window: int,
    horizon: int,
    test_size: int | None = None,
    val_size: int | None = None,
    min_train: int | None = None,
) -> Split:
    """Split ``n`` rows into train / validation / test, in time order.

    ``test_size`` defaults to ``horizon`` (one forecast origin: the last H rows),
    ``val_size`` to 10% of ``n`` (at least ``horizon``). The training part must hold
    ``min_train`` rows (default: one full window plus horizon).

    Raises:
        ValueError: non-positive sizes, or a series too short for the request.
    """
    if window < 1 or horizon < 1:
        raise ValueError(
            f"chronological_split: window and horizon must be >= 1, got {window}, {horizon}"
        )
    test = horizon if test_size is None else int(test_size)
    val = _default_part(n, horizon) if val_size is None else int(val_size)
    if test < horizon or val < horizon:
        raise ValueError(
            f"chronological_split: validation ({val}) and test ({test}) parts must each "
            f"hold at least one horizon ({horizon})"
        )
    train = window + horizon if min_train is None else int(min_train)
    need = train + val + test
    if n < need:
        what = f"window {window} + horizon {horizon}" if min_train is None else f"training {train}"
        raise ValueError(
            f"series too short: {n} rows, but {what} + validation {val} + test {test} "
            f"need at least {need}"
        )
    return Split(train_end=n - test - val, val_end=n - test, n=n)


def backtest_splits(
    n: int,
    window: int,
    horizon: int,
    folds: int,
    test_size: int,
    val_size: int | None = None,
    min_train: int | None = None,
) -> list[Split]:
    """Rolling-origin folds: fold ``k`` (0 = oldest) tests on rows
    ``[n - (folds - k) * test_size, n - (folds - k - 1) * test_size)`` and trains and
    validates on everything before. Raises ``ValueError`` when the oldest fold is too short."""
    if folds < 1:
        raise ValueError(f"backtest_splits: folds must be >= 1, got {folds}")
    splits = []
    for k in range(folds):
        end = n - (folds - k - 1) * test_size
        splits.append(chronological_split(end, window, horizon, test_size, val_size, min_train))
    return splits


def window_origins(start: int, stop: int, window: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Origins ``o = start, start + stride, ...`` with a full window before
    (``o >= window``) and all ``horizon`` targets before ``stop``. Shape ``(N,)``, int64."""
    first = max(start, window)
    last = stop - horizon  # inclusive
    if last < first:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, last + 1, stride, dtype=np.int64)


def make_windows(
    features: np.ndarray, target: np.ndarray, origins: np.ndarray, window: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gather windows: ``X`` of shape ``(N, W, F)`` and targets ``Y`` of shape ``(N, H)``.

    ``features`` is ``(T, F)`` and ``target`` is ``(T,)``; see the module docstring.
    """
    if features.ndim != 2 or target.ndim != 1 or len(features) != len(target):
        raise ValueError(
            "make_windows: expected features (T, F) and target (T,), got "
            f"{features.shape} and {target.shape}"
        )
    origins = np.asarray(origins, dtype=np.int64)
    if len(origins) and (origins.min() < window or origins.max() + horizon > len(target)):
        raise ValueError(
            f"make_windows: origins must lie in [{window}, {len(target) - horizon}], "
            f"got [{origins.min()}, {origins.max()}]"
        )
    past = origins[:, None] + np.arange(-window, 0)[None, :]  # (N, W) row numbers
    ahead = origins[:, None] + np.arange(horizon)[None, :]  # (N, H) row numbers
    return features[past], target[ahead]


@dataclass(frozen=True)
class Scaler:
    """Per-feature standardisation ``z = (x - mean) / scale``, fitted on training rows.

    ``mean`` and ``scale`` have shape ``(F,)``; a constant column gets ``scale = 1``.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray) -> Scaler:
        """Fit on ``rows`` of shape ``(N, F)`` (pass the training rows only)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or len(rows) == 0:
            raise ValueError(f"Scaler.fit: expected rows of shape (N>0, F), got {rows.shape}")
        mean = rows.mean(axis=0)
        scale = rows.std(axis=0)
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(mean)), scale, 1.0)
        return cls(mean=mean, scale=scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale ``x`` of shape ``(..., F)``."""
        return (x - self.mean) / self.scale

    def inverse(self, z: np.ndarray, feature: int | None = None) -> np.ndarray:
        """Undo the scaling: all features (``z`` is ``(..., F)``) or one ``feature``."""
        if feature is None:
            return z * self.scale + self.mean
        return z * self.scale[feature] + self.mean[feature]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Scaler:
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"Scaler.from_dict: expected mean and scale lists ({err})") from None
        if mean.shape != scale.shape or mean.ndim != 1 or not np.all(scale > 0):
            raise ValueError("Scaler.from_dict: mean and scale must be equal-length, scale > 0")
        return cls(mean=mean, scale=scale)
