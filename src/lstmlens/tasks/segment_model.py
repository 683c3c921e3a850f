"""Segment-wise recurrent forecaster for long horizons (after SegRNN, Lin et al. 2023).

Shapes: ``B`` windows (one series or channel each), lookback ``W = N * S`` cut into
``N`` segments of ``S`` steps, horizon ``H`` decoded as ``M = ceil(H / S)`` segments,
model width ``d``.

    x'      = x - norm(x)                                   # RevIN-style: last value or mean
    e       = ReLU(Linear_S->d(x'.view(B, N, S))) [+ ctx]   # (B, N, d): one step per segment
    _, h    = RNN(e)                                        # h: (layers, B, d)
    q       = [pos_m ; chan_c]  for m < M                   # (B * M, 1, d) position (+ channel)
    out, _  = RNN(q, h repeated M times)                    # (B * M, 1, d): one batched step
    y_hat   = Linear_d->S(dropout(out)).view(B, M * S)[:, :H] + norm(x)

Anchored (``anchored=True``): each window comes with an anchor ``a`` ``(B, H)`` (a
statistical forecast, :mod:`lstmlens.tasks.global_anchor`); the network sees it relative
to the level and corrects it, its head starting at zero (so training starts at ``a``):

    e       = ... + Linear_H->d(a - norm(x))                # added to every segment
    y_hat   = Linear_d->S(dropout(out)).view(B, M * S)[:, :H] + a

The encoder runs ``N`` recurrent steps instead of ``W``; the decoder is parallel
multi-step (every output segment from the same encoder state in one batched step),
not recursive. Channel independence: each column of a wide table is a separate row
of the batch through one shared model; an optional channel (or series) embedding
``chan_c`` lets the decoder tell them apart. The recurrent layer is any lstmlens
layer (``lstm`` with any variant, ``gru``, ``rnn``).

Ensemble (``members = K > 1``, after N-BEATS): ``K`` independently initialised copies
see the same batches; in training the output is ``(K, B, H)`` (each member its own
loss against the broadcast target), in evaluation the median over members ``(B, H)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from ..layers import GRU, LSTM, RNN

__all__ = ["CELLS", "NORMS", "SegmentConfig", "SegmentNet"]

#: Recurrent layers by name; ``variant`` applies to the LSTM.
CELLS: dict[str, Any] = {
    "lstm": lambda i, h, variant, layers: LSTM(
        i, h, num_layers=layers, batch_first=True, variant=variant
    ),
    "gru": lambda i, h, variant, layers: GRU(i, h, num_layers=layers, batch_first=True),
    "rnn": lambda i, h, variant, layers: RNN(i, h, num_layers=layers, batch_first=True),
}

#: Window normalisation: the level subtracted from the inputs and added to the outputs.
NORMS: dict[str, Any] = {
    "last": lambda x: x[:, -1:],  # (B, 1): SegRNN's choice
    "mean": lambda x: x.mean(dim=1, keepdim=True),  # (B, 1)
    "none": lambda x: torch.zeros_like(x[:, :1]),
}


@dataclass(frozen=True)
class SegmentConfig:
    """Everything needed to rebuild a :class:`SegmentNet` (stored with a run)."""

    window: int  # W: lookback steps, a multiple of segment
    horizon: int  # H: steps forecast
    segment: int = 24  # S: steps per segment
    hidden_size: int = 512  # d: segment embedding and recurrent width
    cell: str = "gru"  # a key of CELLS
    variant: str = "vanilla"  # LSTM variant preset (cell "lstm" only)
    num_layers: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # before the output projection
    norm: str = "last"  # a key of NORMS
    channels: int = 0  # C: channel/series embeddings (0: position embedding only)
    members: int = 1  # K: ensemble members, the median forecast in evaluation
    anchored: bool = False  # correct a given anchor (B, H) instead of the level

    def __post_init__(self) -> None:
        if self.segment < 1 or self.window % self.segment:
            raise ValueError(
                f"SegmentConfig: window {self.window} must be a multiple of segment {self.segment}"
            )
        if self.cell not in CELLS or self.norm not in NORMS:
            raise ValueError(
                f"SegmentConfig: cell must be one of {sorted(CELLS)} and norm one of "
                f"{sorted(NORMS)}, got {self.cell!r}, {self.norm!r}"
            )
        if self.horizon < 1 or self.hidden_size < 2 or self.members < 1:
            raise ValueError(
                "SegmentConfig: horizon >= 1, hidden_size >= 2 and members >= 1 expected"
            )

    @property
    def out_segments(self) -> int:
        """M: output segments covering the horizon."""
        return math.ceil(self.horizon / self.segment)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SegmentNet(nn.Module):
    """``forward(x, channel=None)``: ``x`` ``(B, W)`` -> ``(B, H)`` (``(K, B, H)`` when
    training an ensemble); ``channel`` ``(B,)`` long, required when ``config.channels > 0``.
    Member 0 is this module's own layers (so a single model's weights keep their names);
    members ``1..K-1`` live in ``others``."""

    def __init__(self, config: SegmentConfig) -> None:
        super().__init__()
        self.config = c = config
        d = c.hidden_size
        self.embed = nn.Sequential(nn.Linear(c.segment, d), nn.ReLU())
        self.rnn = CELLS[c.cell](d, d, c.variant, c.num_layers)
        pos_width = d - d // 2 if c.channels else d
        self.pos = nn.Parameter(torch.randn(c.out_segments, pos_width))  # (M, d or d/2)
        self.chan = nn.Parameter(torch.randn(c.channels, d // 2)) if c.channels else None
        out = nn.Linear(d, c.segment)
        self.head = nn.Sequential(nn.Dropout(c.dropout), out)
        self.anchor_in = nn.Linear(c.horizon, d) if c.anchored else None
        if c.anchored:  # start at the anchor: the network learns the correction only
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        single = replace(c, members=1)
        self.others = nn.ModuleList(SegmentNet(single) for _ in range(c.members - 1))

    def forward(
        self,
        x: torch.Tensor,
        channel: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        anchor: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``context`` ``(B, d)``, optional: added to every segment embedding of every
        member (a series' conditioning, :mod:`lstmlens.tasks.global_net`); ``anchor``
        ``(B, H)``: required exactly when ``config.anchored``."""
        if not len(self.others):
            return self._member(x, channel, context, anchor)
        members = [self._member(x, channel, context, anchor)]
        members += [m(x, channel, context, anchor) for m in self.others]
        outs = torch.stack(members)
        return outs if self.training else outs.quantile(0.5, dim=0)  # (K, B, H) or (B, H)

    def _member(
        self,
        x: torch.Tensor,
        channel: torch.Tensor | None,
        context: torch.Tensor | None = None,
        anchor: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c = self.config
        if x.ndim != 2 or x.shape[1] != c.window:
            raise ValueError(f"SegmentNet: expected input (B, {c.window}), got {tuple(x.shape)}")
        if (channel is None) != (self.chan is None):
            raise ValueError("SegmentNet: pass channel (B,) exactly when config.channels > 0")
        if (anchor is None) == c.anchored:
            raise ValueError("SegmentNet: pass anchor (B, H) exactly when config.anchored")
        B, M, d = len(x), c.out_segments, c.hidden_size
        level = NORMS[c.norm](x)  # (B, 1)
        e = self.embed((x - level).view(B, c.window // c.segment, c.segment))  # (B, N, d)
        if context is not None:
            e = e + context.unsqueeze(1)
        if self.anchor_in is not None and anchor is not None:
            e = e + self.anchor_in(anchor.to(x.dtype) - level).unsqueeze(1)
            level = anchor.to(x.dtype)  # (B, H): what the head corrects
        _, state = self.rnn(e)  # (layers, B, d), a pair for the LSTM
        query = self.pos.unsqueeze(0).expand(B, M, -1)  # (B, M, d or d/2)
        if self.chan is not None:
            chan = self.chan[channel].unsqueeze(1).expand(B, M, -1)  # (B, M, d/2)
            query = torch.cat([query, chan], dim=-1)  # (B, M, d)
        query = query.reshape(B * M, 1, d)  # (B * M, 1, d)
        repeat = lambda h: h.repeat_interleave(M, dim=1)  # (layers, B * M, d)
        state = tuple(map(repeat, state)) if isinstance(state, tuple) else repeat(state)
        out, _ = self.rnn(query, state)  # (B * M, 1, d)
        y = self.head(out[:, 0]).view(B, M * c.segment)[:, : c.horizon]  # (B, H)
        return y + level
