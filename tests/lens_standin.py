"""A stand-in for the lens trace (lstmlens.lens.trace), built from plain arrays, for lens tests.

It has the attributes and methods the lens statistics, plots and page read from a trace.
:func:`lstm_gates` computes the gates of a vanilla LSTM layer (torch's gate order i, f, g, o)
step by step in NumPy float64, straight from the equations, so that tests can build
realistic gate arrays without depending on the recording code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

LSTM_GATES = ("input", "forget", "candidate", "output", "cell", "hidden")
GRU_GATES = ("reset", "update", "candidate", "hidden")


class StandInTrace:
    """``gates[layer][direction][name]`` -> array (T, H), (T, B, H) or (B, T, H)."""

    def __init__(
        self,
        kind: str,
        gates: Sequence[Sequence[dict[str, np.ndarray]]],
        *,
        batch_first: bool = False,
        lengths: Sequence[int] | None = None,
    ) -> None:
        self.kind = kind
        self._gates = gates
        self.gate_names = tuple(gates[0][0])
        self.num_layers = len(gates)
        self.num_directions = len(gates[0])
        self.hidden_size = int(np.shape(gates[0][0][self.gate_names[0]])[-1])
        self.batch_first = batch_first
        self.lengths = None if lengths is None else torch.as_tensor(lengths)

    def gate(self, name: str, layer: int = 0, direction: int = 0) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self._gates[layer][direction][name]))

    def gates(self, layer: int = 0, direction: int = 0) -> dict[str, torch.Tensor]:
        return {name: self.gate(name, layer, direction) for name in self.gate_names}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def lstm_gates(
    x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray
) -> dict[str, np.ndarray]:
    """Every gate of a vanilla LSTM layer over x (T, I), from zero state: name -> (T, H).

    z = W_ih x_t + W_hh h_{t-1} + b, split i, f, g, o; c_t = f c_{t-1} + i g; h_t = o tanh c_t.
    """
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    out = {name: [] for name in LSTM_GATES}
    for x_t in np.asarray(x, dtype=np.float64):
        z = w_ih @ x_t + w_hh @ h + bias  # (4H,)
        i, f = _sigmoid(z[:hidden]), _sigmoid(z[hidden : 2 * hidden])
        g, o = np.tanh(z[2 * hidden : 3 * hidden]), _sigmoid(z[3 * hidden :])
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, v in zip(LSTM_GATES, (i, f, g, o, c, h), strict=True):
            out[name].append(v)
    return {name: np.stack(v) for name, v in out.items()}


def random_lstm_trace(
    steps: int, hidden: int, *, inputs: int = 3, layers: int = 1, seed: int = 0
) -> StandInTrace:
    """A one-sequence LSTM trace (T, H) of random weights driven by a random input."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, inputs))
    per_layer = []
    for _ in range(layers):
        gates = lstm_gates(
            x,
            rng.normal(scale=0.8, size=(4 * hidden, x.shape[1])),
            rng.normal(scale=0.8, size=(4 * hidden, hidden)),
            rng.normal(scale=0.5, size=4 * hidden),
        )
        per_layer.append([gates])
        x = gates["hidden"]
    return StandInTrace("lstm", per_layer)
