"""Windows drawn lazily from many series: index arithmetic, never all materialised.

Each series ``i`` of a :class:`~lstmlens.data.panel.Panel` is split chronologically at
its own points (``train_end[i]``, ``val_end[i]``, ``end[i]``) and standardised with the
mean and standard deviation of its **training rows only**:

    z_i = (y_i - mean_i) / std_i,     mean_i, std_i over y_i[0 : train_end[i]]

A window with origin ``o`` of series ``i`` reads ``z_i[o - W : o]`` and predicts
``z_i[o : o + H]``. The origins of one part ``[a, b)`` of series ``i`` are
``o = max(a, W), ... , b - H`` with the given stride, so a validation or test window's
inputs reach back into the earlier part, as in use (and as the standard ETT loaders
do). Window ``k`` of the whole set is found by a binary search over the cumulative
window counts ``cum`` (shape ``(N + 1,)``):

    i = searchsorted(cum, k, side="right") - 1,   o = first[i] + (k - cum[i]) * stride

so memory is the scaled series (``sum T_i`` floats) plus ``O(N)`` integers, whatever
the number of windows. :meth:`PanelWindows.gather` cuts a whole batch with one fancy
index ``z[offset_i + o + arange(-W, H)]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .panel import Panel

__all__ = ["PanelScaler", "PanelSplit", "PanelWindows", "last_h_split"]


@dataclass(frozen=True)
class PanelSplit:
    """Per-series split points, each shape ``(N,)``: train ``[0, train_end)``,
    validation ``[train_end, val_end)``, test ``[val_end, end)``."""

    train_end: np.ndarray
    val_end: np.ndarray
    end: np.ndarray

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(start, stop)`` arrays of the part ``"train"``, ``"val"`` or ``"test"``."""
        bounds = {
            "train": (np.zeros_like(self.train_end), self.train_end),
            "val": (self.train_end, self.val_end),
            "test": (self.val_end, self.end),
        }
        if name not in bounds:
            raise ValueError(f"PanelSplit: part must be train, val or test, got {name!r}")
        return bounds[name]


def last_h_split(lengths: np.ndarray, horizon: int, origins: int = 1, val: int = 1) -> PanelSplit:
    """The competition split of every series: the last ``origins x H`` points test, the
    ``val x H`` before them validate, the rest trains (docs/design.md)."""
    end = np.asarray(lengths, dtype=np.int64)
    val_end = end - origins * horizon
    return PanelSplit(train_end=val_end - val * horizon, val_end=val_end, end=end)


@dataclass(frozen=True)
class PanelScaler:
    """Per-series standardisation; ``mean`` and ``std`` have shape ``(N,)``."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, panel: Panel, train_end: np.ndarray, kind: str = "standard") -> PanelScaler:
        """Fit each series on its rows ``[0, train_end[i])`` only.

        ``kind="standard"``: mean and population std (a constant series gets std 1).
        ``kind="mean"``: no shift, divide by the mean absolute value (GluonTS's mean
        scaler), ``z_i = y_i / mean|y_i|``; scale-free losses (sMAPE) stay exact on ``z``.
        """
        if kind not in ("standard", "mean"):
            raise ValueError(f"PanelScaler.fit: kind must be standard or mean, got {kind!r}")
        train_end = np.asarray(train_end, dtype=np.int64)
        if np.any(train_end < 1) or np.any(train_end > panel.lengths):
            raise ValueError("PanelScaler.fit: every series needs 1 <= train_end <= its length")
        n, which = len(panel), np.repeat(np.arange(len(panel)), panel.lengths)  # (sum T_i,)
        position = np.arange(len(panel.values)) - panel.offsets[which]  # row within its series
        keep = position < train_end[which]  # training rows only
        rows, values = which[keep], panel.values[keep]
        count = train_end.astype(np.float64)
        if kind == "mean":
            level = np.bincount(rows, np.abs(values), minlength=n) / count
            return cls(mean=np.zeros(n), std=np.where(level > 1e-12, level, 1.0))
        mean = np.bincount(rows, values, minlength=n) / count  # two passes: exact
        std = np.sqrt(np.bincount(rows, (values - mean[rows]) ** 2, minlength=n) / count)
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean=mean, std=std)

    def transform(self, panel: Panel, dtype=np.float32) -> np.ndarray:
        """The panel's flat values standardised per series, shape ``(sum T_i,)``."""
        which = np.repeat(np.arange(len(panel)), panel.lengths)
        return ((panel.values - self.mean[which]) / self.std[which]).astype(dtype)

    def inverse(self, z: np.ndarray, series: np.ndarray) -> np.ndarray:
        """Undo the scaling of ``z`` (shape ``(B, ...)``) for the series ``series`` ``(B,)``."""
        shape = (-1,) + (1,) * (np.ndim(z) - 1)
        return z * self.std[series].reshape(shape) + self.mean[series].reshape(shape)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> PanelScaler:
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64))


class PanelWindows(Dataset):
    """Windows of one part of every series, found by index arithmetic.

    Args:
        z: the scaled flat values, shape ``(sum T_i,)`` (see :meth:`PanelScaler.transform`).
        offsets: series starts in ``z``, shape ``(N + 1,)``.
        start, stop: the part of each series, shape ``(N,)`` each: origins lie in
            ``[max(start, W), stop - H]``.
        window, horizon: ``W`` and ``H``.
        stride: steps between consecutive origins of one series (1: every window).

    ``dataset[k]`` is ``(x, y, i)``: ``x`` ``(W,)``, ``y`` ``(H,)`` float tensors and the
    series number ``i``.
    """

    def __init__(
        self,
        z: np.ndarray,
        offsets: np.ndarray,
        start: np.ndarray,
        stop: np.ndarray,
        window: int,
        horizon: int,
        stride: int = 1,
    ) -> None:
        if window < 1 or horizon < 1 or stride < 1:
            raise ValueError(
                f"PanelWindows: window, horizon and stride must be >= 1, got "
                f"{window}, {horizon}, {stride}"
            )
        self.z = torch.from_numpy(np.ascontiguousarray(z))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.window, self.horizon, self.stride = window, horizon, stride
        self.first = np.maximum(np.asarray(start, dtype=np.int64), window)  # (N,)
        last = np.asarray(stop, dtype=np.int64) - horizon  # (N,) inclusive
        counts = np.where(last >= self.first, (last - self.first) // stride + 1, 0)
        self.counts = counts.astype(np.int64)  # windows per series, (N,)
        self.cum = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)  # (N + 1,)
        self._span = torch.arange(-window, horizon)  # (W + H,)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def locate(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Series numbers and origins of windows ``k`` (shape ``(B,)`` each)."""
        k = np.asarray(k, dtype=np.int64)
        if len(k) and (k.min() < 0 or k.max() >= len(self)):
            raise IndexError(f"PanelWindows: window index out of range [0, {len(self)})")
        i = np.searchsorted(self.cum, k, side="right") - 1
        return i, self.first[i] + (k - self.cum[i]) * self.stride

    def gather(self, k: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch: ``x`` ``(B, W)``, ``y`` ``(B, H)`` and series numbers ``(B,)``."""
        i, o = self.locate(k)
        rows = torch.from_numpy(self.offsets[i] + o)[:, None] + self._span  # (B, W + H)
        cut = self.z[rows]
        return cut[:, : self.window], cut[:, self.window :], torch.from_numpy(i)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y, i = self.gather(np.array([k]))
        return x[0], y[0], int(i[0])

    def __getitems__(self, ks: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.gather(np.asarray(ks))

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Iterate over all windows in batches (a random order when ``shuffle``). The
        permutation is ``len(self)`` int64s, the only per-window memory."""
        n = len(self)
        order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
        for lo in range(0, n, batch_size):
            yield self.gather(order[lo : lo + batch_size])
