"""The published long-horizon protocol (``--protocol ltsf``), as the ETT/Informer loaders do.

For a table of ``T`` rows and ``C`` columns sharing one time axis:

1. **Split** chronologically into ``n_train, n_val, n_test`` rows: given as fractions
   (``0.7,0.1,0.2``: ``n_train = int(0.7 T)``, ``n_test = int(0.2 T)``,
   ``n_val = T - n_train - n_test``) or as row counts (the ETT hourly sets:
   ``8640,2880,2880``, the rows after them unused).
2. **Normalise** each column with the mean and (population) standard deviation of its
   training rows: ``z = (x - mean) / std``.
3. **Windows** with lookback ``W`` and horizon ``H``: training origins ``W .. n_train - H``;
   validation and test origins cover their part with stride 1 and their inputs start
   ``W`` rows before it, so a part of ``n`` rows has ``n - H + 1`` windows per column
   (no window dropped).
4. **Score** MSE and MAE on the normalised scale, averaged over every window, step and
   column, for the model and the repeat-last-value baseline ``z_hat[o + h] = z[o - 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.panel import Panel
from ..data.panel_windows import PanelScaler, PanelSplit, PanelWindows

__all__ = ["LtsfData", "ltsf_data", "parse_split", "scores"]


def parse_split(text: str | tuple[float, ...], rows: int) -> tuple[int, int, int]:
    """``(n_train, n_val, n_test)`` from ``"0.7,0.1,0.2"`` (fractions) or ``"8640,2880,2880"``
    (row counts) for a table of ``rows`` rows."""
    parts = [float(p) for p in text.split(",")] if isinstance(text, str) else list(text)
    if len(parts) != 3 or min(parts) <= 0:
        raise ValueError(f"--split: expected three positive numbers TRAIN,VAL,TEST, got {text!r}")
    if all(p < 1 for p in parts):
        if sum(parts) > 1 + 1e-9:
            raise ValueError(f"--split: fractions add up to {sum(parts):g} > 1")
        n_train, n_test = int(rows * parts[0]), int(rows * parts[2])
        sizes = (n_train, rows - n_train - n_test, n_test)
    elif all(p == int(p) for p in parts):
        sizes = (int(parts[0]), int(parts[1]), int(parts[2]))
    else:
        raise ValueError(f"--split: give three fractions or three row counts, got {text!r}")
    if sum(sizes) > rows:
        raise ValueError(f"--split {text}: {sum(sizes)} rows asked, the table has {rows}")
    return sizes


@dataclass(frozen=True)
class LtsfData:
    """The normalised windows of the three parts and the scaler that made them."""

    train: PanelWindows
    val: PanelWindows
    test: PanelWindows
    scaler: PanelScaler
    sizes: tuple[int, int, int]


def ltsf_data(panel: Panel, window: int, horizon: int, split: str) -> LtsfData:
    """Split, normalise and window a panel of equally long columns (a wide table)."""
    lengths = panel.lengths
    if len(set(lengths.tolist())) != 1:
        raise ValueError(
            "--protocol ltsf needs columns of one length on a shared time axis (a wide table)"
        )
    n_train, n_val, n_test = parse_split(split, int(lengths[0]))
    if min(n_train, n_val, n_test) < horizon or n_train < window + horizon:
        raise ValueError(
            f"--split {split}: each part needs at least the horizon {horizon} rows and the "
            f"training part window + horizon = {window + horizon}"
        )
    ones = np.ones(len(panel), dtype=np.int64)
    cut = PanelSplit(n_train * ones, (n_train + n_val) * ones, (n_train + n_val + n_test) * ones)
    scaler = PanelScaler.fit(panel, cut.train_end)
    z = scaler.transform(panel)

    def part(name: str) -> PanelWindows:
        start, stop = cut.part(name)
        return PanelWindows(z, panel.offsets, start, stop, window, horizon)

    return LtsfData(part("train"), part("val"), part("test"), scaler, (n_train, n_val, n_test))


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MSE and MAE over all entries of ``pred`` and ``truth`` (same shape)."""
    err = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))}
