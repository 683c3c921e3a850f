"""Pictures of gates (PNG, matplotlib): heatmaps, the saturation scatter, cell trajectories.

Each ``*_figure`` function takes plain arrays, one gate as (T, H) (one sequence: T steps,
H units), and returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no display needed: the Agg canvas renders it). :func:`save_png` writes a figure
atomically; :func:`write_pngs` draws the standard set for a whole trace.

The saturation scatter follows Karpathy, Johnson & Fei-Fei (2015, fig. 3): one point per
unit at (fraction of steps < 0.1, fraction of steps > 0.9); points near the x axis are
gates that are mostly shut, near the y axis mostly open, and the diagonal x + y = 1 holds
units that are always saturated one way or the other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lstmlens.io import save_png
from lstmlens.lens.stats import SIGMOID_GATES, one_sequence, saturation

__all__ = [
    "cell_trajectories_figure",
    "gate_heatmaps_figure",
    "pick_units",
    "save_png",
    "saturation_figure",
    "text_heat_figure",
    "write_pngs",
]

_LAYER_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _as_2d(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().double().numpy()
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected one sequence (T, H), got shape {a.shape}")
    return a


def _units(units: Sequence[int] | None, hidden: int, name: str) -> list[int]:
    chosen = list(range(min(hidden, 8))) if units is None else [int(u) for u in units]
    bad = [u for u in chosen if not 0 <= u < hidden]
    if not chosen or bad:
        raise ValueError(f"{name}: expected units in [0, {hidden}), got {list(units or [])}")
    return chosen


def pick_units(values: Any, k: int = 8) -> list[int]:
    """The ``k`` units of a (T, H) array that vary most over time (largest std), sorted."""
    a = _as_2d(values, "pick_units")
    return sorted(int(u) for u in np.argsort(-a.std(axis=0))[:k])


def gate_heatmaps_figure(
    gates: Mapping[str, Any],
    units: Sequence[int] | None = None,
    *,
    tokens: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """One heatmap per gate: chosen units (rows) over time (columns).

    Sigmoid gates use a 0..1 scale; the others (candidate, cell, hidden) a diverging
    scale symmetric about 0. With ``tokens`` and at most 100 steps, steps are labelled.
    """
    if not gates:
        raise ValueError("gate_heatmaps_figure: expected at least one gate, got none")
    arrays = {name: _as_2d(v, "gate_heatmaps_figure") for name, v in gates.items()}
    steps, hidden = next(iter(arrays.values())).shape
    chosen = _units(units, hidden, "gate_heatmaps_figure")
    width, height = min(4 + steps * 0.12, 18), 0.9 + 0.35 * len(chosen) * len(arrays)
    fig = Figure(figsize=(width, height))  # margins in inches, laid out by hand: 2x faster
    fig.subplots_adjust(
        left=1.0 / width, right=1 - 0.2 / width, top=1 - 0.45 / height, bottom=0.5 / height
    )
    axes = fig.subplots(len(arrays), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, a) in zip(axes, arrays.items(), strict=True):
        img = a[:, chosen].T  # (units, T)
        if name in SIGMOID_GATES:
            im = ax.imshow(
                img, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1
            )
        else:
            lim = max(float(np.abs(img).max()), 1e-12)
            im = ax.imshow(
                img, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-lim, vmax=lim
            )
        ax.set_yticks(range(len(chosen)), [str(u) for u in chosen], fontsize=7)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    if tokens is not None and steps <= 100:
        labels = [repr(t)[1:-1] for t in list(tokens)[:steps]]
        axes[-1].set_xticks(range(len(labels)), labels, fontsize=7, fontfamily="monospace")
    axes[-1].set_xlabel("step")
    fig.suptitle(title or "gates over time (rows: units)")
    return fig


def saturation_figure(
    layers: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    low: float = 0.1,
    high: float = 0.9,
    title: str = "",
) -> Figure:
    """Left- vs right-saturated fraction, one point per unit, one panel per sigmoid gate.

    ``layers`` maps gate name -> (T, H) for one layer, or is a list of such maps, one per
    layer (coloured by layer). Gates that are not sigmoid gates are left out.
    """
    per_layer = [layers] if isinstance(layers, Mapping) else list(layers)
    names = [g for g in SIGMOID_GATES if any(g in m for m in per_layer)]
    if not names:
        raise ValueError(
            f"saturation_figure: expected at least one of the gates {SIGMOID_GATES}, "
            f"got {sorted({g for m in per_layer for g in m})}"
        )
    fig = Figure(figsize=(3.6 * len(names), 4.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        for layer, gates in enumerate(per_layer):
            if name not in gates:
                continue
            sat = saturation(_as_2d(gates[name], "saturation_figure"), low, high)
            colour = _LAYER_COLOURS[layer % len(_LAYER_COLOURS)]
            ax.scatter(sat.left, sat.right, s=10, alpha=0.7, color=colour, label=f"layer {layer}")
        ax.plot([0, 1], [1, 0], color="0.6", lw=0.8, ls="--")
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=f"{name} gate")
        ax.set_xlabel(f"fraction of steps < {low}")
        ax.set_box_aspect(1.0)
    axes[0].set_ylabel(f"fraction of steps > {high}")
    if len(per_layer) > 1:
        axes[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(title or "gate saturation (one point per unit)")
    return fig


def cell_trajectories_figure(
    cell: Any,
    units: Sequence[int] | None = None,
    *,
    signal: Any = None,
    signal_name: str = "signal",
    title: str = "",
) -> Figure:
    """The cell state c_t (or any state) of chosen units over time, one line per unit.

    With ``signal`` (T,), it is drawn in grey on a second axis for comparison.
    """
    c = _as_2d(cell, "cell_trajectories_figure")
    chosen = _units(units, c.shape[1], "cell_trajectories_figure")
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.subplots()
    for u in chosen:
        ax.plot(c[:, u], lw=1.0, label=f"unit {u}")
    ax.axhline(0.0, color="0.8", lw=0.6)
    ax.set(xlabel="step", ylabel="value", title=title or "cell state over time")
    if signal is not None:
        s = np.asarray(signal, dtype=np.float64).reshape(-1)
        if s.shape != (c.shape[0],):
            raise ValueError(
                f"cell_trajectories_figure: expected a signal of shape ({c.shape[0]},), "
                f"got {s.shape}"
            )
        twin = ax.twinx()
        twin.plot(s, color="0.5", lw=0.8, ls=":", label=signal_name)
        twin.set_ylabel(signal_name, color="0.4")
    ax.legend(fontsize=7, ncol=min(len(chosen), 4), loc="upper left")
    return fig


def text_heat_figure(
    text: str | Sequence[str], values: Any, *, width: int = 80, title: str = ""
) -> Figure:
    """The text with each step's characters on a background coloured by ``values`` (T,).

    Karpathy-style: blue for positive, red for negative, white for 0, scaled by
    max(1, max|v|). Lines wrap at newlines and at ``width`` characters.
    """
    pieces = list(text) if isinstance(text, str) else [str(t) for t in text]
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape != (len(pieces),):
        raise ValueError(f"text_heat_figure: expected {len(pieces)} values, got {v.shape}")
    if width < 1:
        raise ValueError(f"text_heat_figure: expected width >= 1, got {width}")
    scale = max(1.0, float(np.abs(v).max(initial=0.0)))
    cells: list[tuple[int, int, str, float]] = []  # (row, column, char, value)
    row = col = 0
    for piece, value in zip(pieces, v, strict=True):
        for ch in piece:
            if col >= width:
                row, col = row + 1, 0
            cells.append((row, col, "\u21b5" if ch == "\n" else ch, value / scale))
            row, col = (row + 1, 0) if ch == "\n" else (row, col + 1)
    rows = max(row + 1, 1)
    cols = max((c for _, c, _, _ in cells), default=0) + 1  # the longest line
    fig = Figure(figsize=(0.09 * cols + 0.4, 0.2 * rows + 0.5), layout="constrained")
    ax = fig.subplots()
    rgba = np.ones((rows, cols, 4))
    for r, c, _, x in cells:
        rgba[r, c, :3] = (1 - 0.6 * x, 1 - 0.35 * x, 1) if x >= 0 else (1, 1 + 0.6 * x, 1 + 0.6 * x)
    ax.imshow(rgba, aspect="auto", interpolation="nearest")
    for r, c, ch, _ in cells:
        ax.text(c, r, ch, ha="center", va="center", fontsize=8, fontfamily="monospace")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def write_pngs(
    trace: Any,
    directory: str | os.PathLike[str],
    *,
    units: Sequence[int] | None = None,
    batch_index: int = 0,
    tokens: Sequence[str] | None = None,
    dpi: int = 110,
) -> list[Path]:
    """Draw the standard pictures of one sequence of a trace into ``directory``.

    Per layer l and direction (suffix ``l{l}`` or ``l{l}_reverse``): ``gates_*.png``
    (heatmaps of every gate) and ``cell_*.png`` (``hidden_*.png`` for GRU / RNN); per
    direction, ``saturation[_reverse].png`` with every layer (not for a plain RNN).
    Units default to the 8 whose state varies most in that layer; ``dpi`` sets the
    resolution.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = "cell" if "cell" in trace.gate_names else "hidden"
    written: list[Path] = []
    for d in range(trace.num_directions):
        tail = "_reverse" if d else ""
        per_layer = []
        for layer in range(trace.num_layers):
            gates = {
                name: one_sequence(
                    trace.gate(name, layer=layer, direction=d),
                    batch_index,
                    lengths=trace.lengths,
                    batch_first=trace.batch_first,
                )
                for name in trace.gate_names
            }
            per_layer.append(gates)
            chosen = list(units) if units is not None else pick_units(gates[state])
            where = f"layer {layer}" + (" (reverse)" if d else "")
            fig = gate_heatmaps_figure(gates, chosen, tokens=tokens, title=f"gates, {where}")
            written.append(save_png(fig, out / f"gates_l{layer}{tail}.png", dpi=dpi))
            fig = cell_trajectories_figure(gates[state], chosen, title=f"{state} state, {where}")
            written.append(save_png(fig, out / f"{state}_l{layer}{tail}.png", dpi=dpi))
        if any(g in SIGMOID_GATES for g in trace.gate_names):
            fig = saturation_figure(
                per_layer, title="gate saturation" + (" (reverse)" if d else "")
            )
            written.append(save_png(fig, out / f"saturation{tail}.png", dpi=dpi))
    return written
