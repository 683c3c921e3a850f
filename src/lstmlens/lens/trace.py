"""Recording every gate of every step: ``trace = lstmlens.inspect(model, x)``.

The recorded forward runs the reference path (the per-step loop over the cell) with a
recorder attached, so what is stored is exactly what the cell used: a removed gate reads as
its constant (ones), cifg's forget gate as ``1 - i``. It works on a bare
:class:`~lstmlens.LSTM` / ``GRU`` / ``RNN`` and on any model that contains one (the task models).

Gate names: LSTM ``input, forget, candidate, output, cell, hidden``; GRU ``reset, update,
candidate, hidden``; RNN ``hidden``. The classic tutorials' words are accepted too:
``learn`` = input, ``remember`` = cell, ``use`` = output, ``new_memory`` = candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..recurrent import RecurrentBase

__all__ = ["GATE_NAMES", "VOCABULARY", "Trace", "inspect"]

GATE_NAMES = {
    "lstm": ("input", "forget", "candidate", "output", "cell", "hidden"),
    "gru": ("reset", "update", "candidate", "hidden"),
    "rnn": ("hidden",),
}
#: the learn / forget / remember / use words of the classic tutorials -> gate names
VOCABULARY = {"learn": "input", "remember": "cell", "use": "output", "new_memory": "candidate"}


@dataclass
class Trace:
    """The gates of one recurrent module over one forward pass.

    ``gate(name, layer, direction)`` is shaped like that layer's output: (T, B, H) time-major,
    (B, T, H) with ``batch_first``, (T, H) for unbatched input. With packed input, steps past a
    sequence's length hold its last state; ``lengths`` says where each sequence ends.
    """

    kind: str
    num_layers: int
    num_directions: int
    hidden_size: int
    batch_first: bool
    batched: bool
    lengths: Tensor | None
    output: Any = None  # what the model returned
    module: nn.Module | None = None
    inputs: Tensor | None = None  # what the recorded module read (None when packed)
    #: rows that are separate windows (a forecast page): per (layer, direction) the state
    #: ``hidden`` / ``cell`` each row's step read, shaped like the gates; None otherwise
    before: dict[tuple[int, int], dict[str, Tensor]] | None = field(default=None, repr=False)
    _gates: dict[tuple[int, int], dict[str, Tensor]] = field(default_factory=dict, repr=False)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self.kind]

    def gate(self, name: str, layer: int = 0, direction: int = 0) -> Tensor:
        """One gate of one layer-direction, every step, every unit."""
        key = VOCABULARY.get(name, name)
        if key not in self.gate_names:
            raise ValueError(
                f"Trace.gate: unknown gate {name!r} for a {self.kind.upper()}; expected one of "
                f"{self.gate_names} or {tuple(VOCABULARY)}"
            )
        if not 0 <= layer < self.num_layers or not 0 <= direction < self.num_directions:
            raise ValueError(
                f"Trace.gate: layer must be in [0, {self.num_layers}) and direction in "
                f"[0, {self.num_directions}), got layer={layer}, direction={direction}"
            )
        g = self._gates[(layer, direction)][key]  # (T, B, U)
        if not self.batched:
            return g[:, 0]
        return g.transpose(0, 1) if self.batch_first else g

    def gates(self, layer: int = 0, direction: int = 0) -> dict[str, Tensor]:
        """Every gate of one layer-direction, by name."""
        return {name: self.gate(name, layer, direction) for name in self.gate_names}


def _find_module(model: nn.Module, module: nn.Module | None) -> RecurrentBase:
    if module is not None:
        if not isinstance(module, RecurrentBase):
            raise TypeError(
                f"inspect: module must be a lstmlens LSTM/GRU/RNN, got {type(module).__name__}"
            )
        return module
    for m in model.modules():
        if isinstance(m, RecurrentBase):
            return m
    raise TypeError(
        f"inspect: expected a lstmlens LSTM/GRU/RNN or a model containing one, got {type(model).__name__} "
        "(a torch.nn.LSTM can be converted with lstmlens.LSTM.from_torch)"
    )


def inspect(
    model: nn.Module, *inputs: Any, module: nn.Module | None = None, **kwargs: Any
) -> Trace:
    """Run ``model(*inputs, **kwargs)`` in eval mode without gradients, recording every gate.

    ``module`` picks the recurrent module to record when the model has several (default: the
    first one). The model's train/eval modes are restored afterwards.
    """
    target = _find_module(model, module)
    calls: list[dict[tuple[int, int], dict[str, Tensor]]] = []
    seen: dict[str, Any] = {}

    def pre_hook(mod: nn.Module, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        x = args[0]
        given = kw.get("lengths", args[2] if len(args) > 2 else None)  # padded input's ends
        seen["lengths"] = None if given is None else given.detach().to("cpu", torch.long)
        seen["inputs"] = None if isinstance(x, PackedSequence) else x.detach()
        if isinstance(x, PackedSequence):
            seen["batched"] = True
            bs = x.batch_sizes
            lengths = (bs.unsqueeze(0) > torch.arange(int(bs[0])).unsqueeze(1)).sum(
                1
            )  # sorted order
            if x.unsorted_indices is not None:
                lengths = lengths[x.unsorted_indices.cpu()]
            seen["lengths"] = lengths
        else:
            seen["batched"] = x.dim() == 3
        calls.append({})

    def record(layer: int, direction: int, gates: dict[str, Tensor]) -> None:
        calls[-1][(layer, direction)] = {k: v.detach() for k, v in gates.items()}

    modes = {m: m.training for m in model.modules()}
    handle = target.register_forward_pre_hook(pre_hook, with_kwargs=True)
    target._recorder = record
    try:
        model.eval()
        with torch.no_grad():
            output = model(*inputs, **kwargs)
    finally:
        target._recorder = None
        handle.remove()
        for m, training in modes.items():
            m.train(training)
    if not calls:
        raise ValueError(
            f"inspect: {type(model).__name__} never called its {type(target).__name__}"
        )
    kind = target.mode.lower()
    gates = calls[-1]
    if kind == "rnn":
        gates = {k: {"hidden": v["hidden"]} for k, v in gates.items()}
    return Trace(
        kind=kind,
        num_layers=target.num_layers,
        num_directions=target.num_directions,
        hidden_size=target.hidden_size,
        batch_first=target.batch_first,
        batched=seen["batched"],
        lengths=seen["lengths"],
        output=output,
        module=target,
        inputs=seen["inputs"],
        _gates=gates,
    )
