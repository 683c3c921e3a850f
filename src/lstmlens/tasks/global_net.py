"""The global forecaster: a :class:`~lstmlens.tasks.segment_model.SegmentNet` that knows
which series it reads (optional series-id embedding and static covariates).

For window ``b`` of series ``i_b`` with static covariates ``s_i`` (``K`` of them, each
standardised over the series) and an id embedding ``E[i]`` of ``D`` numbers:

    ctx_b = Linear_{D + K -> d}([E[i_b] ; s_{i_b}])          # (B, d)
    y_hat = SegmentNet(x_b, channel=i_b, context=ctx_b)       # ctx added to every segment

Neither option: ``ctx`` is absent and the network is the plain SegmentNet (the same
parameter names, so runs saved before these options load unchanged). The static
values live in the module as a buffer (``static_table``, ``(N, K)``), so a saved run
predicts from the series numbers alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .segment_model import SegmentConfig, SegmentNet

__all__ = ["GlobalConfig", "GlobalNet", "standardise_static"]


@dataclass(frozen=True)
class GlobalConfig(SegmentConfig):
    """:class:`SegmentConfig` plus the series conditioning."""

    series: int = 0  # N: series known to the model (needed by the two options below)
    id_embedding: int = 0  # D: width of the series-id embedding (0: none)
    static: int = 0  # K: static covariates per series (0: none)

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.series, self.id_embedding, self.static) < 0:
            raise ValueError("GlobalConfig: series, id_embedding and static must be >= 0")
        if (self.id_embedding or self.static) and self.series < 1:
            raise ValueError("GlobalConfig: an id embedding or static covariates need series >= 1")


class GlobalNet(SegmentNet):
    """``forward(x, series, anchor=None)``: ``x`` ``(B, W)``, ``series`` ``(B,)`` long,
    ``anchor`` ``(B, H)`` (an anchored model) -> ``(B, H)``."""

    config: GlobalConfig
    static_table: torch.Tensor

    def __init__(self, config: GlobalConfig) -> None:
        super().__init__(config)
        c, width = config, config.id_embedding + config.static
        self.id_table = nn.Embedding(c.series, c.id_embedding) if c.id_embedding else None
        if c.static:
            self.register_buffer("static_table", torch.zeros(c.series, c.static))
        self.context = nn.Linear(width, c.hidden_size) if width else None

    def set_static(self, values: np.ndarray) -> None:
        """Store the standardised static covariates, shape ``(N, K)``."""
        want = (self.config.series, self.config.static)
        if np.shape(values) != want:
            raise ValueError(f"GlobalNet: static values of shape {want} expected, got "
                             f"{np.shape(values)}")  # fmt: skip
        self.static_table.copy_(torch.as_tensor(values, dtype=self.static_table.dtype))

    def forward(  # type: ignore[override]  # the series number replaces the channel
        self,
        x: torch.Tensor,
        series: torch.Tensor | None = None,
        anchor: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c = self.config
        if series is None and (c.channels or self.context is not None):
            raise ValueError("GlobalNet: this model needs the series number of every window")
        channel = series if c.channels else None
        if self.context is None:
            return super().forward(x, channel, None, anchor)
        parts: list[torch.Tensor] = [] if self.id_table is None else [self.id_table(series)]
        if c.static:
            parts.append(self.static_table[series])
        ctx = self.context(torch.cat(parts, dim=-1).to(x.dtype))  # (B, d)
        return super().forward(x, channel, ctx, anchor)


def standardise_static(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, mean, std)``: each static column standardised over the series (a constant
    column gets std 1). ``values`` ``(N, K)``."""
    values = np.asarray(values, dtype=np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return (values - mean) / std, mean, std
