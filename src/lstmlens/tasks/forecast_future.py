"""Known-future covariates on the model scale: the block each forecast reads, the rows a
forecast needs, the rows given after the end of a series, and the note on held ones.

Notation as in :mod:`.forecast`: ``u`` ``(T, F)`` the model-scale features ``[y, X]``,
``cols`` the positions of the ``K`` known-future covariates in them, ``S`` the output
steps per pass. The block of origin ``o`` is ``[f[o], f[o+1], ..., f[o+S-1]]`` flattened
to ``S K`` numbers, which every row of the window carries (``_net_io``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["blocks_needed", "extend", "future_block", "held_note"]


def future_block(u: np.ndarray, origins: np.ndarray, cols: list[int], steps: int) -> np.ndarray:
    """The known-future covariates of rows ``o .. o+steps-1`` per origin, flattened
    ``(N, steps K)``; rows past the end of ``u`` repeat its last row (the lens only: a
    forecast is given every row it needs, :func:`extend`)."""
    rows = np.asarray(origins, dtype=np.int64)[:, None] + np.arange(steps)
    f = u[np.clip(rows, 0, len(u) - 1)][..., cols]  # (N, steps, K)
    return f.reshape(len(f), -1)


def blocks_needed(steps: int, out_steps: int) -> int:
    """Rows a forecast of ``steps`` values reads covariates from: whole passes of ``S``."""
    return -(-int(steps) // out_steps) * out_steps


def extend(
    u: np.ndarray,
    future: np.ndarray | None,
    cols: list[int],
    mean: np.ndarray,
    scale: np.ndarray,
    names: tuple[str, ...],
) -> np.ndarray:
    """``u`` with the rows of ``future`` ``(R, K)`` (data units) after it, scaled by
    ``mean`` and ``scale`` (the target and past covariates NaN there); ``ValueError``
    unless ``future`` has the ``K`` columns ``names`` and no blanks."""
    rows = 0 if future is None else len(future)
    if future is not None:
        future = np.asarray(future, dtype=np.float64).reshape(rows, -1)
        if future.shape[1] != len(cols) or np.isnan(future).any():
            raise ValueError(
                f"Forecaster: future covariates must be {rows} rows x {len(cols)} "
                f"columns {list(names)} without missing values"
            )
    if not rows:
        return u
    ext = np.full((rows, u.shape[1]), np.nan)
    ext[:, cols] = (future - mean[cols]) / scale[cols]
    return np.concatenate([u, ext])


def held_note(past: tuple[str, ...], steps: int, out_steps: int) -> str | None:
    """The line announcing past-only covariates held at their last value, when a forecast
    of ``steps`` values rolls past ``S = out_steps``; else None."""
    if not past or steps <= out_steps:
        return None
    return (
        f"past-only covariates {', '.join(past)} are held at their last known value for "
        f"the steps after the first {out_steps} (the forecast rolls forward); give columns "
        "known in advance as --future-covariates"
    )
