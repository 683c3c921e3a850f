r"""Several models on one page: their memory reach (log scale) and gate saturation side by side.

:func:`compare_page` takes named models and one input sequence each (or one for all) and
returns a self-contained HTML page (inline SVG, a few lines of JavaScript, no network):

- **Memory reach**: for each model, :func:`~lstmlens.lens.memory_reach` at the output step
  ``t`` (default the last), drawn relative to its value at lag 0,
  :math:`\mathrm{reach}_k / \mathrm{reach}_0`, on a log scale, all models on one chart, with
  a table of the values at a few lags. A plain RNN's curve falls by orders of magnitude
  within tens of steps (the vanishing gradient); an LSTM's stays up.
- **Saturation** (Karpathy, Johnson & Fei-Fei 2015): per model and sigmoid gate of its
  top layer, one point per unit at (fraction of steps shut < 0.1, fraction open > 0.9);
  clicking a point selects that unit and names it.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .reach import memory_reach
from .stats import SIGMOID_GATES, one_sequence, saturation
from .trace import inspect

__all__ = ["compare_page", "compare_runs", "reach_figure"]

PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
FLOOR = 1e-30  # the lowest value drawn on the log axis; smaller (and zero) reach sits on it
LAGS = (1, 10, 30, 60, 90, 200, 500)

_CSS = """
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: #1d2430; }
header, section { padding: 10px 22px; }
header { border-bottom: 1px solid #d9dee6; }
h1 { font-size: 1.3em; margin: 4px 0; } h2 { font-size: 1.05em; margin: 6px 0; }
.muted { color: #5b6575; }
svg.reach { width: 100%; max-width: 900px; height: auto; border: 1px solid #d9dee6; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 2px 12px 2px 0; text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; }
.models { display: flex; flex-wrap: wrap; gap: 18px; }
.model { border: 1px solid #d9dee6; border-radius: 6px; padding: 6px 10px; }
.model svg { width: 150px; height: auto; }
circle[data-unit] { cursor: pointer; }
circle.chosen { fill: #d62728; fill-opacity: 1; stroke: #1d2430; }
#picked { min-height: 1.4em; }
"""

_SCRIPT = """
(function () {
  "use strict";
  const picked = document.getElementById("picked");
  function pick(ev) {
    const dot = ev.target.closest("circle[data-unit]");
    if (!dot || !(ev.type === "click" || ev.key === "Enter")) return;
    const model = dot.closest(".model");
    model.querySelectorAll("circle.chosen").forEach((c) => c.classList.remove("chosen"));
    model.querySelectorAll('circle[data-unit="' + dot.dataset.unit + '"]')
      .forEach((c) => c.classList.add("chosen"));
    model.dataset.unit = dot.dataset.unit;
    picked.textContent = model.dataset.name + ", unit " + dot.dataset.unit + ": "
      + dot.querySelector("title").textContent;
  }
  document.addEventListener("click", pick);
  document.addEventListener("keydown", pick);
  document.body.dataset.ready = "1";
})();
"""


def _log(v: float) -> float:
    return math.log10(max(v, FLOOR))


def reach_figure(curves: Mapping[str, np.ndarray], width: int = 900, height: int = 380) -> str:
    """Inline SVG: each curve (reach by lag, already relative to lag 0) on a log10 y axis."""
    if not curves:
        raise ValueError("reach_figure: expected at least one curve")
    left, right, top, bottom = 70, 250, 14, 40
    kmax = max(len(c) for c in curves.values()) - 1
    lo = min(_log(float(np.min(c))) for c in curves.values())
    lo = math.floor(min(lo, -1.0))
    x = lambda k: left + (k / max(kmax, 1)) * (width - left - right)  # noqa: E731
    parts = [
        f'<svg class="reach" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="memory reach by lag, log scale">'
    ]
    step = max(1, math.ceil(-lo / 8))
    lo = -step * math.ceil(-lo / step)  # the lowest grid line is the bottom of the chart
    floored = any(float(np.min(c)) <= FLOOR for c in curves.values())
    y = lambda v: top + (max(_log(v), lo) / lo) * (height - top - bottom)  # noqa: E731
    for e in range(0, lo - 1, -step):
        yy = y(10.0**e)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eceff3"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6575">{"≤ " if floored and e == lo else ""}1e{e}</text>'
        )
    tick = next(n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if kmax / n <= 8)
    for k in range(0, kmax + 1, tick):
        parts.append(
            f'<text x="{x(k):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11" fill="#5b6575">{k}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle" '
        'font-size="12">lag k (steps back from the output step)</text>'
    )
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" font-size="12" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})" text-anchor="middle">'
        "reach_k / reach_0</text>"
    )
    for n, (name, curve) in enumerate(curves.items()):
        colour = PALETTE[n % len(PALETTE)]
        pts = " ".join(f"{x(k):.1f},{y(float(v)):.1f}" for k, v in enumerate(curve))
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2" '
            f'data-model="{html.escape(name)}"/>'
        )
        ly = top + 16 + 18 * n
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{ly - 4}" '
            f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
        )
        parts.append(
            f'<text x="{width - right + 36}" y="{ly}" font-size="12">'
            f"{html.escape(name[:34])}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _saturation_svg(left: np.ndarray, right: np.ndarray, gate: str) -> str:
    s, m = 150, 22
    parts = [
        f'<svg viewBox="0 0 {s + m + 6} {s + m + 16}" data-gate="{gate}">',
        f'<text x="{m + s / 2}" y="11" text-anchor="middle" font-size="11">{gate}</text>',
        f'<rect x="{m}" y="16" width="{s}" height="{s}" fill="#fafbfc" stroke="#d9dee6"/>',
        f'<text x="{m + s / 2}" y="{s + m + 12}" text-anchor="middle" font-size="9" '
        'fill="#5b6575">shut (&lt;0.1)</text>',
        f'<text x="9" y="{16 + s / 2}" font-size="9" fill="#5b6575" text-anchor="middle" '
        f'transform="rotate(-90 9 {16 + s / 2})">open (&gt;0.9)</text>',
    ]
    for u, (lv, rv) in enumerate(zip(left, right)):
        if not (math.isfinite(lv) and math.isfinite(rv)):
            continue
        parts.append(
            f'<circle cx="{m + lv * s:.1f}" cy="{16 + s - rv * s:.1f}" r="3.2" '
            f'fill="#2f6fc6" fill-opacity="0.55" data-unit="{u}" tabindex="0">'
            f"<title>{gate}: shut {100 * lv:.0f}%, open {100 * rv:.0f}%</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _saturation_panel(name: str, model: Any, x: Any) -> str:
    trace = inspect(model, *(x if isinstance(x, tuple) else (x,)))
    layer = trace.num_layers - 1
    plots = []
    for gate in trace.gate_names:
        if gate not in SIGMOID_GATES:
            continue
        values = one_sequence(
            trace.gate(gate, layer=layer), lengths=trace.lengths, batch_first=trace.batch_first
        )  # (T, H) of the first sequence
        sat = saturation(values)
        plots.append(_saturation_svg(sat.left, sat.right, gate))
    body = "".join(plots) or '<p class="muted">no gates: a plain RNN has nothing to saturate</p>'
    return (
        f'<div class="model" data-name="{html.escape(name)}"><h3>{html.escape(name)} '
        f'<span class="muted">({trace.kind.upper()}, top layer)</span></h3>{body}</div>'
    )


def compare_page(
    models: Mapping[str, Any],
    x: Any,
    *,
    t: int | None = None,
    title: str = "lstmlens: how far back each model remembers",
) -> str:
    """One HTML page comparing ``models`` (name -> model) on their memory reach and saturation.

    ``x`` is the input of one sequence for every model, or a mapping name -> input (each as
    :func:`~lstmlens.lens.memory_reach` takes it). ``t`` is the output step (default the
    last step of each input). Returns the HTML as a string.
    """
    if not models:
        raise ValueError("compare_page: expected at least one model, got none")
    inputs = x if isinstance(x, Mapping) else dict.fromkeys(models, x)
    missing = [name for name in models if name not in inputs]
    if missing:
        raise ValueError(f"compare_page: no input for {missing}")
    curves, rows = {}, []
    for name, model in models.items():
        xs = inputs[name]
        reach = memory_reach(model, xs, -1 if t is None else t)  # (t+1,) by lag
        rel = reach / reach[0] if reach[0] > 0 else reach
        curves[name] = rel
        rows.append((name, len(rel) - 1, rel))
    lags = [k for k in LAGS if any(k < len(c) for c in curves.values())]
    head = "".join(f"<th>k = {k}</th>" for k in lags)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{t_used}</td>"
        + "".join(f"<td>{rel[k]:.2e}</td>" if k < len(rel) else "<td></td>" for k in lags)
        + "</tr>"
        for name, t_used, rel in rows
    )
    panels = "".join(_saturation_panel(name, m, inputs[name]) for name, m in models.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>
<p class="muted">{len(models)} models. Memory reach: how much the output at step t still
changes when the input k steps earlier changes, ||d y_t / d x_(t-k)|| (Frobenius norm of the
Jacobian), relative to k = 0.</p></header>
<section><h2>Memory reach (log scale)</h2>
{reach_figure(curves)}
<table id="reach-table"><tr><th>model</th><th>t</th>{head}</tr>{body}</table>
<p class="muted">A curve that falls by orders of magnitude within a few dozen steps is the
vanishing gradient: whatever happened earlier can no longer change the output, so the model
cannot learn to use it. The LSTM's forget gate (kept near 1) lets the gradient through.</p>
</section>
<section><h2>Gate saturation (top layer)</h2>
<p class="muted">One point per unit: the fraction of steps a gate is shut (&lt; 0.1) and wide
open (&gt; 0.9), as in Karpathy, Johnson &amp; Fei-Fei (2015). Click a point to select the
unit.</p>
<p id="picked" aria-live="polite"></p>
<div class="models">{panels}</div>
</section>
<script>{_SCRIPT}</script>
</body></html>
"""


def _text_input(model: Any, config: dict[str, Any], text: str | None, max_steps: int) -> Any:
    """Token ids (1, T) of ``text`` (default: text the model writes, seed 0), first steps."""
    import torch

    if text is None:
        text = model.generate(prompt="", length=max_steps, temperature=0.8, seed=0)
    tokens = model.tokenizer.split(text)[:max_steps]
    if not tokens:
        raise ValueError("compare_runs: the input text has no tokens")
    return torch.tensor([[model.tokenizer.stoi.get(tok, 0) for tok in tokens]])  # (1, T)


def _longrange_input(model: Any, config: dict[str, Any], text: str | None, max_steps: int) -> Any:
    """One test sequence (1, L, I) of the run's long-range task (seed 0)."""
    import torch

    from lstmlens.tasks.longrange import make_task

    problem = config.get("problem")
    if isinstance(problem, dict):  # a run folder of lstmlens longrange --out
        options = problem.get("options") or {}
        task = make_task(str(problem.get("name")), int(problem.get("length", 0)), **options)
        return task.sample(1, torch.Generator().manual_seed(0)).inputs
    name = problem or config.get("task_name") or config.get("name")
    if not isinstance(name, str) or "length" not in config:
        raise ValueError(
            "compare_runs: a longrange run's config.json must name its problem "
            f"('problem') and 'length'; got keys {sorted(config)}"
        )
    return make_task(name, int(config["length"])).sample(1, torch.Generator().manual_seed(0)).inputs


#: config.json "task" -> the input one sequence of that task's model reads
_INPUTS: dict[str, Callable[[Any, dict[str, Any], str | None, int], Any]] = {
    "language": _text_input,
    "text": _text_input,
    "longrange": _longrange_input,
}


def _load(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """(model, config) of a run folder: ``lstmlens.load_run`` where it exists, else text runs."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise ValueError(f"compare_runs: {run_dir} is not a run folder (no config.json)")
    config = json.loads(path.read_text(encoding="utf-8"))
    task = config.get("task") if isinstance(config, dict) else None
    if task not in _INPUTS:
        raise ValueError(
            f"compare_runs: {run_dir} holds a {task!r} run; --compare reads {sorted(_INPUTS)} runs"
        )
    import torch

    import lstmlens

    if hasattr(lstmlens, "load_run"):
        loaded = lstmlens.load_run(run_dir)
        model = loaded[0] if isinstance(loaded, tuple) else getattr(loaded, "model", loaded)
        if isinstance(model, torch.nn.ModuleDict):  # a long-range race: its lstm, else first
            model = model["lstm"] if "lstm" in model else next(iter(model.values()))
        return model, config
    if task in ("language", "text"):
        from lstmlens.tasks.language import load_language_model

        return load_language_model(run_dir)
    raise ValueError(f"compare_runs: loading a {task!r} run needs lstmlens.load_run")


def compare_runs(
    run_dirs: Sequence[str | os.PathLike[str]],
    html_path: str | os.PathLike[str],
    *,
    text: str | None = None,
    max_steps: int = 200,
) -> Path:
    """Write the :func:`compare_page` of several run folders to ``html_path``.

    Each model reads one sequence of its own task: a text run the first ``max_steps``
    tokens of ``text`` (default: text it writes itself), a longrange run one test sequence
    of its problem. Two runs with the same folder name are told apart by their parent.
    """
    from .html import write_page

    if not run_dirs:
        raise ValueError("compare_runs: expected at least one run folder")
    models, inputs = {}, {}
    for run in map(Path, run_dirs):
        model, config = _load(run)
        name = run.name if run.name not in models else f"{run.parent.name}/{run.name}"
        models[name] = model
        inputs[name] = _INPUTS[config["task"]](model, config, text, max_steps)
    title = "lstmlens: " + " vs ".join(models)
    return write_page(compare_page(models, inputs, title=title), html_path)
