"""The lens page: one self-contained HTML file to look inside every gate of every step.

:func:`text_page` shows a text with each token coloured by a chosen unit's value (layer,
direction, gate and unit are picked with select elements), a hover with every gate of
that step, a card of the unit's statistics and a list of the most interpretable units.
:func:`series_page` shows a series as inline SVG with the gates of chosen units aligned
under it. Both explain the gates in plain words, and both carry the magnifier: the cell view
(``cellview.js``: the classic diagram with the chosen unit's values at a step, stepped with
the arrow keys), the saturation scatter (``saturation.js``), the memory reach of a few steps
(``reach.js``) and, on a text page, the pattern search (``pattern.js``).

The file needs nothing else: no network, no CDN, no external URL. The data is embedded
as JSON in ``<script type="application/json" id="lens-data">`` and drawn by the vanilla
JavaScript of ``page.js`` (inlined with ``page.css``). Each gate of each layer and
direction is a (T, H) array, row-major, stored as little-endian int16 in base64 with
``value = int / scale`` and ``scale = 32767 / max|value|`` (4-5 significant digits).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from lstmlens.io import write_atomic
from lstmlens.lens.magnifier import cell_info, corpus_payload, reach_payload
from lstmlens.lens.stats import (
    SIGMOID_GATES,
    correlation,
    half_life,
    interpretable_units,
    mean_activation,
    one_sequence,
    saturation,
    series_signals,
    text_signals,
)

__all__ = ["TUTORIAL_WORDS", "series_page", "text_page", "write_page"]

#: The vocabulary of the classic LSTM tutorials, mapped onto the lens's gate names.
TUTORIAL_WORDS = {"input": "learn", "forget": "forget", "cell": "remember", "output": "use"}

_EXPLAIN = {
    "lstm": """
<p>An LSTM carries two memories from step to step: the <b>cell state</b> c, a long-term
memory, and the <b>hidden state</b> h, its short-term memory and output. At every step four
small networks, the <b>gates</b>, look at the new input x<sub>t</sub> and at
h<sub>t-1</sub>; each gives one number per unit.</p>
<table>
<tr><th>tutorial word</th><th>gate here</th><th>what it does</th></tr>
<tr><td>forget</td><td>forget gate f (0..1)</td><td>how much of the old memory
c<sub>t-1</sub> to keep: 1 keeps it all, 0 wipes it. At a steady f the memory halves every
ln 0.5 / ln f steps (the unit's <i>half-life</i>).</td></tr>
<tr><td>learn</td><td>input gate i (0..1) and candidate g (-1..1)</td><td>g is the new
content proposed from x<sub>t</sub> and h<sub>t-1</sub>; i says how much of it to write.</td></tr>
<tr><td>remember</td><td>cell update c</td><td>the new long-term memory:
c<sub>t</sub> = f &middot; c<sub>t-1</sub> + i &middot; g.</td></tr>
<tr><td>use</td><td>output gate o (0..1)</td><td>how much of the memory to show:
h<sub>t</sub> = o &middot; tanh(c<sub>t</sub>), which the next step and the next layer
see.</td></tr>
</table>
<p>A gate is <i>saturated</i> when it sits below 0.1 (shut) or above 0.9 (wide open), as in
Karpathy, Johnson &amp; Fei-Fei (2015). A gate that a variant removes reads as a constant
1; in the coupled variant (cifg) the forget gate is 1 - i.</p>
""",
    "gru": """
<p>A GRU keeps one memory, the <b>hidden state</b> h, and two gates decide how it
changes at every step.</p>
<table>
<tr><th>gate</th><th>what it does</th></tr>
<tr><td>reset r (0..1)</td><td>how much of the old state to use when proposing new
content (0: propose as if starting afresh).</td></tr>
<tr><td>candidate n (-1..1)</td><td>the new content: n = tanh(W x<sub>t</sub> + r &middot;
(U h<sub>t-1</sub>)).</td></tr>
<tr><td>update z (0..1)</td><td>keep or replace: h<sub>t</sub> = (1 - z) &middot; n + z
&middot; h<sub>t-1</sub>. z plays the forget gate (z near 1 remembers) and 1 - z the
input gate (learn).</td></tr>
<tr><td>hidden h</td><td>the memory and output, seen by the next step and layer.</td></tr>
</table>
""",
    "rnn": """
<p>A plain RNN has no gates: h<sub>t</sub> = tanh(W x<sub>t</sub> + U h<sub>t-1</sub> + b).
Everything it remembers must survive being multiplied by U at every step, which is why its
memory fades fast and why the LSTM added gates.</p>
""",
}

_SKELETON = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{title}</h1><p>{subtitle}</p></header>
<section id="controls">
<label>layer <select id="layer"></select></label>
<label>direction <select id="direction"></select></label>
<label>gate <select id="gate"></select></label>
<label>unit{unit_hint} <select id="unit"{unit_attrs}></select></label>
{legend}
</section>
<main>
<div id="views">
{view}
<section id="cellview" tabindex="0" aria-label="the cell at one step; left and right arrow keys step">
<h2>The cell at step <span id="step-label"></span></h2>
<div class="stepper">
<button type="button" id="step-back" aria-label="previous step">&#9664; back</button>
<label>step <input id="step" type="number" min="0" value="0"></label>
<button type="button" id="step-forward" aria-label="next step">forward &#9654;</button>
<span class="muted">or &larr; &rarr; keys; click a step to jump</span>
</div>
<svg id="cell-svg" role="img" aria-label="the cell diagram with this step's values"></svg>
<ul id="cell-captions"></ul>
<table id="cell-numbers"></table>
</section>
<section id="reach" aria-label="memory reach">
<h2>How far back does the output at a step listen?</h2>
<p class="muted">The memory reach of step t: how much the top layer's output at t changes when
the input k steps earlier changes (||dy<sub>t</sub>/dx<sub>t-k</sub>||, relative to k = 0, log
scale). A plain RNN's falls by orders of magnitude within tens of steps: the vanishing
gradient.</p>
<div class="stepper"><label>output step <select id="reach-step"></select></label>
<label><input type="checkbox" id="reach-shade"> shade the {what} by it</label></div>
<svg id="reach-svg" role="img" aria-label="memory reach by lag, log scale"></svg>
</section>
{pattern}
</div>
<aside>
<section><h2>Saturation per gate</h2><div id="saturation"></div>
<p class="muted">One point per unit: the fraction of steps the gate is shut (&lt;0.1, right) and
wide open (&gt;0.9, up). Click a point to select its unit.</p></section>
<section><h2>This unit</h2><div id="unit-card"></div></section>
<section><h2>Most interpretable units</h2><ol id="top-units"></ol>
<p class="muted">Units whose value follows a signal a person can name (Pearson r).
Click one to show it.</p></section>
</aside>
</main>
<section id="explain"><h2>What the gates do</h2>{explain}</section>
<div id="tip" hidden></div>
<script type="application/json" id="lens-data">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""

_TEXT_VIEW = '<section id="text" aria-label="the text, coloured by the chosen unit"></section>'
_SERIES_VIEW = (
    '<section id="chart"><svg role="img" aria-label="the series and the gates of the chosen '
    'units"></svg><p id="unit-keys"></p></section>'
)
_PATTERN = """<section id="pattern" aria-label="pattern search">
<h2>Where do these units fire together?</h2>
<p class="muted">Select a stretch of the text (or type its steps); the units of the chosen layer
and gate that stay above the threshold over it form a pattern; the places where the same
units fire together are listed, best match first.</p>
<div class="stepper">
<label>from <input id="pat-from" type="number" min="0" value="0"></label>
<label>to <input id="pat-to" type="number" min="0" value="0"></label>
<label>threshold <input id="pat-threshold" type="number" step="0.05" value="0.5"></label>
<button type="button" id="pat-search">search</button>
</div>
<p id="pat-summary" class="muted"></p>
<ol id="pat-results"></ol>
</section>"""
_LEGEND = (
    '<span id="legend"><span id="legend-lo"></span><span id="legend-bar"></span>'
    '<span id="legend-hi"></span></span>'
)


def _encode(a: np.ndarray, what: str) -> dict[str, Any]:
    """(T, H) float -> {"scale", "width": H, "b64"}: little-endian int16 of round(a * scale)."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"lens page: {what} has non-finite values (nan or inf)")
    peak = float(np.abs(a).max(initial=0.0))
    scale = 32767.0 / peak if peak > 0 else 1.0
    q = np.round(a * scale).astype("<i2")  # (T, H) row-major
    return {
        "scale": scale,
        "width": int(a.shape[1]),
        "b64": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def _rounded(a: np.ndarray, digits: int = 4) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), digits) for v in a]


class _OneSequence:
    """A trace cut down to one sequence of (T, H) arrays, for the statistics."""

    def __init__(self, trace: Any, batch_index: int, max_steps: int | None) -> None:
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"lens page: expected max_steps >= 1, got {max_steps}")
        self.kind = trace.kind
        self.gate_names = tuple(trace.gate_names)
        self.num_layers = int(trace.num_layers)
        self.num_directions = int(trace.num_directions)
        self.batch_first = False
        self.lengths = None
        self.arrays: dict[tuple[str, int, int], np.ndarray] = {}
        self.before: dict[tuple[str, int, int], np.ndarray] = {}
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                for name in self.gate_names:
                    seq = one_sequence(
                        trace.gate(name, layer=layer, direction=d),
                        batch_index,
                        lengths=trace.lengths,
                        batch_first=trace.batch_first,
                    )  # (T, H)
                    self.full_steps = seq.shape[0]
                    self.arrays[name, layer, d] = seq[:max_steps] if max_steps else seq
        for (layer, d), named in (getattr(trace, "before", None) or {}).items():
            for name, g in named.items():  # the state each row read: "before_hidden", ...
                seq = one_sequence(g, batch_index, lengths=trace.lengths, batch_first=False)
                self.before[f"before_{name}", layer, d] = seq[:max_steps] if max_steps else seq
        self.steps, self.hidden_size = next(iter(self.arrays.values())).shape
        self.cell = cell_info(trace)
        if self.steps == 0:
            raise ValueError("lens page: the sequence has no steps")

    def gate(self, name: str, layer: int = 0, direction: int = 0) -> np.ndarray:
        return self.arrays[name, layer, direction]


def _payload(seq: _OneSequence, signals: Mapping[str, np.ndarray], top: int) -> dict[str, Any]:
    arrays, stats, corr = {}, {}, {}
    state_gates = [g for g in ("cell", "hidden") if g in seq.gate_names]
    for layer in range(seq.num_layers):
        for d in range(seq.num_directions):
            ld = f"{layer}/{d}"
            sat, mean = {}, {}
            for name in seq.gate_names:
                a = seq.gate(name, layer, d)
                arrays[f"{ld}/{name}"] = _encode(a, f"gate {name!r} of layer {layer}")
                mean[name] = _rounded(mean_activation(a))
                if name in SIGMOID_GATES:
                    s = saturation(a)
                    sat[name] = {"left": _rounded(s.left), "right": _rounded(s.right)}
            for name in state_gates:
                a = seq.gate(name, layer, d)
                corr[f"{ld}/{name}"] = {
                    k: _rounded(correlation(a, v), 3) for k, v in signals.items()
                }
            hl = half_life(seq.gate("forget", layer, d)) if "forget" in seq.gate_names else None
            stats[ld] = {
                "saturation": sat,
                "mean": mean,
                "halfLife": None if hl is None else _rounded(hl, 2),
            }
    for (name, layer, d), a in seq.before.items():
        arrays[f"{layer}/{d}/{name}"] = _encode(a, f"{name!r} of layer {layer}")
    units = interpretable_units(seq, signals, k=top, gates=state_gates) if signals else []
    return {
        "kind": seq.kind,
        "gates": list(seq.gate_names),
        "layers": seq.num_layers,
        "directions": seq.num_directions,
        "hidden": seq.hidden_size,
        "steps": seq.steps,
        "cell": seq.cell,
        "arrays": arrays,
        "stats": stats,
        "corr": corr,
        "units": [
            {
                "layer": u.layer,
                "direction": u.direction,
                "gate": u.gate,
                "unit": u.unit,
                "r": round(u.r, 4),
                "signal": u.signal,
            }
            for u in units
        ],
    }


#: inlined in this order: the views register themselves, page.js starts them
_SCRIPTS = ("cellview.js", "saturation.js", "pattern.js", "reach.js", "page.js")


def _asset(name: str) -> str:
    return resources.files("lstmlens.lens").joinpath(name).read_text(encoding="utf-8")


def _render(payload: dict[str, Any], title: str, subtitle: str, series: bool) -> str:
    # "<", ">" and "&" escaped so that no "</script>" can end the data block early
    blob = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _SKELETON.format(
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        css=_asset("page.css"),
        js="\n".join(_asset(name) for name in _SCRIPTS),
        data=blob,
        view=_SERIES_VIEW if series else _TEXT_VIEW,
        pattern="" if series else _PATTERN,
        what="series" if series else "text",
        legend="" if series else _LEGEND,
        unit_attrs=' multiple size="4"' if series else "",
        unit_hint=" (ctrl-click for more)" if series else "",
        explain=_EXPLAIN.get(payload["kind"], ""),
    )


def _subtitle(seq: _OneSequence, what: str) -> str:
    dirs = ", bidirectional" if seq.num_directions == 2 else ""
    cut = f" (first {seq.steps} of {seq.full_steps})" if seq.steps < seq.full_steps else ""
    return (
        f"{seq.kind.upper()}, {seq.num_layers} layer(s) of {seq.hidden_size} units{dirs}; "
        f"{seq.steps} steps{cut} of {what}. Hover a step to see every gate."
    )


def text_page(
    trace: Any,
    tokens: str | Sequence[str],
    *,
    title: str = "lstmlens: inside the gates",
    batch_index: int = 0,
    max_steps: int | None = None,
    top: int = 12,
    reach_steps: int | None = None,
    corpus_steps: int | None = None,
) -> str:
    """The lens page of a text model: ``tokens`` (one per step) coloured by a chosen unit.

    ``trace`` is a lens trace (``lstmlens.inspect``); ``tokens`` is the text of sequence
    ``batch_index`` as one string per step (a ``str`` counts one step per character).
    The most interpretable units are those that best follow :func:`text_signals`.
    ``reach_steps`` output steps get their memory reach (:func:`~lstmlens.lens.reach.trace_reach`,
    up to 200 steps back; 0 for none; default 4 for a top layer of at most
    :data:`~lstmlens.lens.magnifier.REACH_AUTO_WIDTH` outputs, else none). With
    ``corpus_steps``, the pattern search reads the state gates (h, c) of the first
    ``corpus_steps`` steps of the trace, stored as uint8 (the page shows ``max_steps``).
    Returns the HTML as a string.
    """
    pieces = list(tokens) if isinstance(tokens, str) else [str(t) for t in tokens]
    seq = _OneSequence(trace, batch_index, max_steps)
    if len(pieces) != seq.full_steps:
        raise ValueError(
            f"text_page: expected one token per step ({seq.full_steps}), got {len(pieces)}"
        )
    payload = _payload(seq, text_signals(pieces[: seq.steps]), top)
    payload.update(
        mode="text",
        tokens=pieces[: seq.steps],
        reach=reach_payload(trace, seq.steps, batch_index, reach_steps),
    )
    if corpus_steps is not None:
        payload["corpus"] = corpus_payload(trace, pieces, batch_index, corpus_steps)
    return _render(payload, title, _subtitle(seq, "text"), series=False)


def series_page(
    trace: Any,
    series: Any,
    *,
    series_name: str = "series",
    title: str = "lstmlens: inside the gates",
    batch_index: int = 0,
    max_steps: int | None = None,
    top: int = 12,
    units: Sequence[int] | None = None,
    reach_steps: int | None = None,
) -> str:
    """The lens page of a forecaster: the ``series`` (T,) with chosen units' gates under it.

    ``units`` are shown first (default: the three units that best follow the series'
    value or change, see :func:`series_signals`). Returns the HTML as a string.
    """
    y = series.detach().cpu().double().numpy() if hasattr(series, "detach") else series
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    seq = _OneSequence(trace, batch_index, max_steps)
    if y.shape != (seq.full_steps,):
        raise ValueError(
            f"series_page: expected one series value per step ({seq.full_steps}), got {y.shape}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("series_page: the series has non-finite values (nan or inf)")
    y = y[: seq.steps]
    payload = _payload(seq, series_signals(y), top)
    if units is None:
        first = payload["units"][0] if payload["units"] else {"layer": 0, "direction": 0}
        same = [
            u["unit"]
            for u in payload["units"]
            if (u["layer"], u["direction"]) == (first["layer"], first["direction"])
        ]
        units = list(dict.fromkeys(same))[:3] or [0]
    bad = [u for u in units if not 0 <= int(u) < seq.hidden_size]
    if bad:
        raise ValueError(f"series_page: expected units in [0, {seq.hidden_size}), got {bad}")
    payload.update(
        mode="series",
        series=_rounded(y, 6),
        seriesName=series_name,
        initialUnits=list(units),
        reach=reach_payload(trace, seq.steps, batch_index, reach_steps),
    )
    return _render(payload, title, _subtitle(seq, series_name), series=True)


def write_page(page: str, path: str | os.PathLike[str]) -> Path:
    """Write a page made by :func:`text_page` / :func:`series_page` atomically (UTF-8)."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
