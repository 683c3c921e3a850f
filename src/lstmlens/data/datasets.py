"""Offline default datasets, read from installed packages (nothing is downloaded).

| function | what | from |
|---|---|---|
| :func:`load_co2` | weekly Mauna Loa CO2 (ppm), 1958-03..2001-12, 2284 weeks, 59 gaps | statsmodels (public domain) |
| :func:`load_sunspots` | yearly sunspot activity, 1700..2008, 309 years | statsmodels (public domain) |
| :func:`load_pydoc_text` | the Python reference's topic help texts, about 0.5 MB | standard library ``pydoc_data`` |
| :func:`load_digits_sequences` | 1797 handwritten digits as 8 rows of 8 pixels | scikit-learn (UCI, CC BY 4.0) |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["load_co2", "load_digits_sequences", "load_pydoc_text", "load_sunspots"]


def load_co2() -> pd.Series:
    """Weekly atmospheric CO2 at Mauna Loa in ppm, named ``"co2"``.

    Index: ``DatetimeIndex`` with frequency ``W-SAT`` (2284 weeks). The 59 weeks
    without a measurement are NaN: fill them (e.g. ``fill="interpolate"``) before use.
    """
    from statsmodels.datasets import co2

    data = co2.load_pandas().data["co2"].astype(np.float64)
    data.name = "co2"
    data.index.name = "date"
    return data


def load_sunspots() -> pd.Series:
    """Yearly mean sunspot activity 1700..2008, named ``"sunspots"``.

    Index: ``DatetimeIndex`` of 1 January of each year (frequency ``YS-JAN``).
    """
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data
    years = frame["YEAR"].astype(int).astype(str)
    index = pd.DatetimeIndex(pd.to_datetime(years, format="%Y"), freq="YS-JAN", name="date")
    return pd.Series(frame["SUNACTIVITY"].to_numpy(np.float64), index=index, name="sunspots")


def load_pydoc_text() -> str:
    """The standard library's help topics (``pydoc_data.topics``) as one text.

    Topics are taken in sorted key order and separated by a blank line; the result
    is the same on every machine with the same Python version.
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


def load_digits_sequences() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as sequences: each image read row by row.

    Returns:
        x: float32 array of shape ``(N, 8, 8)`` = (sample, time step = image row,
            feature = pixel in the row), pixel intensities scaled from 0..16 to 0..1.
        y: int64 labels of shape ``(N,)`` in 0..9. ``N = 1797``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # (N, 8, 8)
    return x, digits.target.astype(np.int64)
