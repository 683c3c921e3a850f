"""The forecasting network, the pinball loss and the task object the trainer drives.

Shapes: ``B`` windows, ``W`` lookback steps, ``F`` input features, ``S`` output
steps (the horizon ``H`` for the direct head, 1 for the recursive one), ``Q``
outputs per step (the number of quantiles, or 1 for a point forecast).

    out, _ = LSTM(x)                 # x: (B, W, F) -> out: (B, W, hidden)
    y_hat  = Linear(out[:, -1])      # last hidden state -> (B, S * Q) -> (B, S, Q)

With ``members = k > 1`` the net holds ``k`` such LSTM + head pairs (a seed ensemble:
each starts from its own random weights and sees the same batches) and ``forward``
returns their median ``(B, S, Q)``; ``forward_members`` gives all ``(k, B, S, Q)``.
The head starts at zero (``zero_head``): the forecast starts from its anchor.

Pinball (quantile) loss for level ``tau`` and error ``e = y - q``:
``rho_tau(e) = max(tau * e, (tau - 1) * e)``, averaged over windows, steps and
levels; with ``tau = 0.5`` it is half the absolute error. Targets may hold NaN
(steps past the end of the training part): those entries are left out of every loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn

from ..layers import LSTM

__all__ = [
    "ForecastNet",
    "ForecastTask",
    "NetConfig",
    "correction_ratio",
    "median_index",
    "pinball_loss",
    "point_loss",
]


@dataclass(frozen=True)
class NetConfig:
    """Everything needed to rebuild a :class:`ForecastNet` (stored in ``config.json``)."""

    input_size: int  # F: the target plus covariates
    hidden_size: int = 32  # LSTM units per layer
    num_layers: int = 1  # stacked LSTM layers
    variant: str = "vanilla"  # an lstmlens variant preset (vanilla, peephole, cifg, ...)
    dropout: float = 0.0  # dropout between stacked layers (torch.nn.LSTM semantics)
    out_steps: int = 1  # S: H (direct head) or 1 (recursive)
    n_outputs: int = 1  # Q: number of quantiles, or 1 for a point forecast
    members: int = 1  # k: LSTMs in the seed ensemble (the forecast is their median)
    zero_head: bool = False  # start the head at zero (an anchored forecast starts at its anchor)
    layer_norm: bool = False  # lstmlens.LSTM options, recorded so the net rebuilds the same
    zoneout: float = 0.0
    recurrent_dropout: float = 0.0
    proj_size: int = 0  # P: h is projected to P units (0: none); the head reads P or hidden
    forget_bias: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ForecastNet(nn.Module):
    """LSTM (batch first) with a linear head on the last step's hidden state, ``k`` times.

    ``forward(x)`` maps ``x`` of shape ``(B, W, F)`` to ``(B, S, Q)`` (the members' median).
    Member 0 is ``self.lstm`` + ``self.head``; members 1.. live in ``self.others``.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if not isinstance(config.members, int) or config.members < 1:
            raise ValueError(
                f"ForecastNet: members must be an integer >= 1, got {config.members!r}"
            )
        self.config = config
        self.lstm, self.head = self._member()
        self.others = nn.ModuleList(
            nn.ModuleList(self._member()) for _ in range(config.members - 1)
        )

    def _member(self) -> tuple[LSTM, nn.Linear]:
        c = self.config
        lstm = LSTM(
            c.input_size,
            c.hidden_size,
            num_layers=c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            variant=c.variant,
            layer_norm=c.layer_norm,
            zoneout=c.zoneout,
            recurrent_dropout=c.recurrent_dropout,
            proj_size=c.proj_size,
            forget_bias=c.forget_bias,
        )
        head = nn.Linear(c.proj_size or c.hidden_size, c.out_steps * c.n_outputs)
        if c.zero_head:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        return lstm, head

    def forward_members(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's forecast: ``(B, W, F)`` -> ``(k, B, S, Q)``."""
        if x.ndim != 3 or x.shape[-1] != self.config.input_size:
            raise ValueError(
                f"ForecastNet: expected input (B, W, {self.config.input_size}), "
                f"got {tuple(x.shape)}"
            )
        outs = []
        for lstm, head in [(self.lstm, self.head), *self.others]:
            out, _ = lstm(x)  # (B, W, hidden)
            y = head(out[:, -1])  # (B, S * Q)
            outs.append(y.view(len(x), self.config.out_steps, self.config.n_outputs))
        return torch.stack(outs)  # (k, B, S, Q)

    @torch.no_grad()
    def zero_heads(self) -> None:
        """Set every member's head to zero: the forecast becomes its anchor."""
        heads: list[nn.Module] = [self.head, *(m[1] for m in self.others)]  # type: ignore[index]
        for head in heads:
            assert isinstance(head, nn.Linear)
            head.weight.zero_()
            head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members = self.forward_members(x)  # (k, B, S, Q)
        return members[0] if len(members) == 1 else members.quantile(0.5, dim=0)


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss: ``pred`` ``(B, S, Q)``, ``target`` ``(B, S)``, ``quantiles`` ``(Q,)``."""
    err = torch.nan_to_num(target).unsqueeze(-1) - pred  # (B, S, Q)
    loss = torch.maximum(quantiles * err, (quantiles - 1.0) * err)
    return _masked_mean(loss, target)


def point_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of a point forecast: ``pred`` ``(B, S, 1)``, ``target`` ``(B, S)``."""
    return _masked_mean((pred.squeeze(-1) - torch.nan_to_num(target)) ** 2, target)


def _masked_mean(loss: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``loss`` ``(B, S, ...)`` over the entries whose ``target`` ``(B, S)`` is known."""
    known = ~torch.isnan(target)
    if bool(known.all()):
        return loss.mean()
    while known.ndim < loss.ndim:
        known = known.unsqueeze(-1)
    known = known.expand_as(loss)
    return torch.where(known, loss, torch.zeros_like(loss)).sum() / known.sum().clamp(min=1)


class ForecastTask:
    """The trainer's task: mini-batches of windows, the loss, and validation.

    Args:
        x_train, y_train: training windows ``(N, W, F)`` and targets ``(N, S)`` (model scale).
        x_val, y_val: validation windows and targets, same layout.
        quantiles: the quantile levels (empty for a point forecast with MSE).
        batch_size: windows per step; the last batch of an epoch may be smaller.
        val_scale: multiply the model-scale error by this to report ``val_mae`` in the
            units of the data (None: no ``val_mae``; only exact without a log transform).
    """

    def __init__(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        quantiles: tuple[float, ...] = (),
        batch_size: int = 64,
        val_scale: float | None = None,
    ) -> None:
        if len(x_train) == 0 or len(x_val) == 0:
            raise ValueError(
                f"ForecastTask: need training and validation windows, got {len(x_train)} "
                f"and {len(x_val)}"
            )
        self.x_train, self.y_train = x_train, y_train
        self.x_val, self.y_val = x_val, y_val
        self.quantiles = torch.tensor(quantiles, dtype=x_train.dtype)
        self.batch_size = int(batch_size)
        self.val_scale = val_scale
        self._median = median_index(quantiles)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if len(self.quantiles):
            return pinball_loss(pred, target, self.quantiles)
        return point_loss(pred, target)

    def train_batches(
        self, epoch: int, generator: torch.Generator
    ) -> list[tuple[torch.Tensor, ...]]:
        order = torch.randperm(len(self.x_train), generator=generator)
        return [
            (self.x_train[idx], self.y_train[idx]) for idx in torch.split(order, self.batch_size)
        ]

    def batch_rows(self) -> int:
        """Rows of a full batch (a distributed run needs at least one per process)."""
        return min(self.batch_size, len(self.x_train))

    def loss_weight(self, batch: tuple[torch.Tensor, ...]) -> float:
        """How many target entries the batch's loss averages over (NaN ones are left out)."""
        return float((~torch.isnan(batch[1])).sum())

    def training_loss(self, model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y = batch
        members = (
            cast(ForecastNet, model).forward_members(x)
            if hasattr(model, "forward_members")
            else model(x)[None]
        )
        loss = self.loss(members[0], y)
        for pred in members[1:]:  # each member learns on its own
            loss = loss + self.loss(pred, y)
        return loss

    def validate(self, model: nn.Module) -> dict[str, float]:
        losses, abs_err = [], []
        for idx in torch.split(torch.arange(len(self.x_val)), 1024):
            pred = model(self.x_val[idx])  # (b, S, Q)
            losses.append(float(self.loss(pred, self.y_val[idx])) * len(idx))
            abs_err.append((pred[..., self._median] - self.y_val[idx]).abs().nansum())
        metrics = {"val_loss": sum(losses) / len(self.x_val)}
        if self.val_scale is not None:
            total = float(sum(abs_err)) / int((~torch.isnan(self.y_val)).sum())
            metrics["val_mae"] = total * self.val_scale
        return metrics


@torch.no_grad()
def correction_ratio(
    net: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, quantiles: tuple[float, ...]
) -> float:
    """The net's validation MAE over its anchor's: below 1 when the correction helps.

    ``y_val`` ``(N, S)`` holds the corrections the net should predict (the anchor's
    errors), so the anchor alone scores ``mean |y|`` and the net ``mean |y - net(x)|``
    (over the known entries, on the model scale). 1.0 when nothing is known.
    """
    known = ~torch.isnan(y_val)
    anchor_mae = float(y_val.abs()[known].mean()) if bool(known.any()) else 0.0
    if anchor_mae <= 0:
        return 1.0
    pred = net(x_val)[..., median_index(quantiles)]  # (N, S)
    return float((pred - y_val).abs()[known].mean()) / anchor_mae


def median_index(quantiles: tuple[float, ...]) -> int:
    """Index of the level nearest 0.5 (the point forecast); 0 for a point model."""
    if not quantiles:
        return 0
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))
