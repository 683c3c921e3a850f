"""LSTM / GRU / RNN layers: drop-in for ``torch.nn.LSTM`` / ``GRU`` / ``RNN``, plus variants.

The machinery they share (stacking, directions, packing, state, torch interop) lives in
:mod:`lstmlens.recurrent`; each class here says how one layer-direction runs over a sequence.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from .cells import CellSpec, _add_forget_bias, lstm_param_shapes
from .kernels.registry import Masks
from .recurrent import RecurrentBase
from .variants import Variant, resolve_variant

__all__ = ["GRU", "LSTM", "RNN"]


class LSTM(RecurrentBase):
    r"""A multi-layer LSTM, drop-in for ``torch.nn.LSTM``, built from its gates.

    For each step (gate order i, f, g, o; see :mod:`lstmlens.cells` for the variants)::

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t                      h_t = o_t * tanh(c_t)   (W_hr(...) with proj_size)

    Args beyond torch's:
        variant: preset name or :class:`~lstmlens.Variant` (Greff et al. 2017).
        layer_norm: layer normalisation of the gate projections and the cell (Ba et al. 2016).
        recurrent_dropout: probability of dropping units of ``h`` on its way into ``W_hh``, one
            mask per sequence and layer-direction (Gal & Ghahramani 2016); training only.
        zoneout: probability that a unit keeps its previous value, per step (Krueger et al.
            2017); a float for both h and c, or a pair ``(z_h, z_c)``. Identity in eval mode.
        forget_bias: added to the forget-gate rows of ``bias_ih`` at initialisation
            (1.0 per Jozefowicz et al. 2015).
        backend: ``"auto"`` or a registered kernel (``"native"``, ``"fused"``, ``"reference"``,
            see :func:`lstmlens.backends`); ``last_backend`` says which ran the latest eager call.
        schedule: ``"auto"``, ``"sequential"`` or ``"wavefront"`` (layers pipelined over time and
            both directions at once, on threads; native backend), see
            :mod:`lstmlens.kernels.schedule`; ``last_schedule`` says which ran the latest eager
            call.

    With full gate recurrence (``fgr``) the gate state ``[i, f, o]`` starts at zero on each call.
    """

    mode = "LSTM"
    _state_count = 2

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        variant: str | Variant = "vanilla",
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        forget_bias: float = 0.0,
        backend: str = "auto",
        device: Any = None,
        dtype: torch.dtype | None = None,
        schedule: str = "auto",
    ) -> None:
        self.variant = resolve_variant(variant, "LSTM")
        self.layer_norm = bool(layer_norm)
        zh, zc = (zoneout, zoneout) if isinstance(zoneout, (int, float)) else tuple(zoneout)
        for label, value in (
            ("recurrent_dropout", recurrent_dropout),
            ("zoneout", zh),
            ("zoneout", zc),
        ):
            if not 0 <= value < 1:
                raise ValueError(f"LSTM: {label} must be in [0, 1), got {value}")
        self.recurrent_dropout, self.zoneout = float(recurrent_dropout), (float(zh), float(zc))
        self.forget_bias = float(forget_bias)
        self.spec = CellSpec(self.variant, hidden_size, proj_size, self.layer_norm, bias)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            backend,
            device,
            dtype,
            schedule,
        )

    def _param_shapes(self, layer_input_size: int) -> dict[str, tuple[int, ...]]:
        return lstm_param_shapes(self.spec, layer_input_size)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for name, w in self.named_parameters():
            if name.startswith("ln_weight"):
                nn.init.ones_(w)
            elif name.startswith("ln_bias"):
                nn.init.zeros_(w)
        if self.forget_bias:
            for layer in range(self.num_layers):
                for d in range(self.num_directions):
                    p = self.layer_parameters(layer, d)
                    _add_forget_bias(
                        self.variant, self.hidden_size, p.get("bias_ih"), self.forget_bias, "LSTM"
                    )

    def _run(self, kernel, x, state, p, keep, recorder):
        h0, c0 = state
        rec = None if recorder is None else recorder.append
        out, h, c = kernel.lstm(x, h0, c0, p, self.spec, self._masks(x, keep), rec)
        return out, (h, c)

    def _masks(self, x: Tensor, keep: Tensor | None) -> Masks:
        """Padding ``keep`` (T, B, 1) joined with this call's zoneout and recurrent-dropout draws."""
        if not self.training:
            return Masks(keep, keep)
        T, B = x.shape[0], x.shape[1]
        P, H = self.spec.state_size, self.hidden_size
        (zh, zc), masks = self.zoneout, Masks(keep, keep)
        if zh:
            zone = torch.bernoulli(x.new_full((T, B, P), zh))  # 1: the unit keeps h_{t-1}
            masks = replace(masks, keep_h=zone if keep is None else torch.maximum(zone, keep))
        if zc:
            zone = torch.bernoulli(x.new_full((T, B, H), zc))
            masks = replace(masks, keep_c=zone if keep is None else torch.maximum(zone, keep))
        if self.recurrent_dropout:
            q = 1 - self.recurrent_dropout
            masks = replace(masks, rmask=torch.bernoulli(x.new_full((B, P), q)) / q)
        return masks

    def _torch_kwargs(self) -> dict[str, Any]:
        return {**super()._torch_kwargs(), "proj_size": self.proj_size}

    def to_torch(self) -> nn.Module:
        """A ``torch.nn.LSTM`` computing the same function; vanilla with no extras only."""
        if not self.variant.is_vanilla:
            raise ValueError(
                f"LSTM.to_torch: torch.nn.LSTM has only the vanilla variant, got variant {self.variant.name!r}"
            )
        for flag, value in (
            ("layer_norm", self.layer_norm),
            ("zoneout", any(self.zoneout)),
            ("recurrent_dropout", self.recurrent_dropout),
        ):
            if value:
                raise ValueError(
                    f"LSTM.to_torch: torch.nn.LSTM has no {flag}, but this LSTM uses it"
                )
        return super().to_torch()

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if not self.variant.is_vanilla:
            s += f", variant={self.variant.name!r}"
        for key in ("layer_norm", "recurrent_dropout", "forget_bias"):
            if getattr(self, key):
                s += f", {key}={getattr(self, key)!r}"
        if any(self.zoneout):
            s += f", zoneout={self.zoneout!r}"
        return s


class GRU(RecurrentBase):
    r"""A multi-layer GRU, drop-in for ``torch.nn.GRU`` (gate order r, z, n)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)   z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))   h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    """

    mode = "GRU"

    def _param_shapes(self, layer_input_size: int) -> dict[str, tuple[int, ...]]:
        return _simple_shapes(3, self.hidden_size, layer_input_size, self.bias)

    def _run(self, kernel, x, state, p, keep, recorder):
        rec = None if recorder is None else recorder.append
        out, h = kernel.gru(x, state[0], p, Masks(keep), rec)
        return out, (h,)


class RNN(RecurrentBase):
    r"""A multi-layer Elman RNN, drop-in for ``torch.nn.RNN``:
    ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with ``act`` tanh or relu.

    The network LSTMs improve on: its gradient through time is a product of ``W_hh`` Jacobians,
    which vanishes (or explodes) over long gaps.
    """

    mode = "RNN"

    def __init__(self, *args: Any, nonlinearity: str = "tanh", **kwargs: Any) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(*args, **kwargs)

    def _param_shapes(self, layer_input_size: int) -> dict[str, tuple[int, ...]]:
        return _simple_shapes(1, self.hidden_size, layer_input_size, self.bias)

    def _run(self, kernel, x, state, p, keep, recorder):
        rec = None if recorder is None else recorder.append
        out, h = kernel.rnn(x, state[0], p, self.nonlinearity, Masks(keep), rec)
        return out, (h,)

    def _torch_kwargs(self) -> dict[str, Any]:
        return {**super()._torch_kwargs(), "nonlinearity": self.nonlinearity}


def _simple_shapes(n_gates: int, H: int, I: int, bias: bool) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "weight_ih": (n_gates * H, I),
        "weight_hh": (n_gates * H, H),
    }
    if bias:
        shapes["bias_ih"] = (n_gates * H,)
        shapes["bias_hh"] = (n_gates * H,)
    return shapes
