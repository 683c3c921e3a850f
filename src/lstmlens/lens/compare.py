r"""Several models on one page: their memory reach (log scale) and gate saturation side by side.

:func:`compare_page` takes named models and their input (one sequence, or a list of
sequences, per model or for all) and returns a self-contained HTML page (inline SVG, a few
lines of JavaScript, no network):

- **Memory reach**, three curves per model (:mod:`.compare_measures`), each relative to its
  value at lag 0 on a log scale, all models on one chart, with a table at a few lags:
  the reach to every input (:func:`~lstmlens.lens.memory_reach`, the median over the
  sequences), the reach to the inputs the task marks as needed (dots; given ``relevant``),
  and the memory path ``||dc_t/dc_(t-k)||`` (LSTM) / ``||dh_t/dh_(t-k)||`` (GRU, RNN). A
  plain RNN's curves fall by orders of magnitude within tens of steps (the vanishing
  gradient); an LSTM's memory path stays near 1. Everything is computed on a float64 copy
  of each model: a plain RNN's reach falls below float32's smallest number within a few
  dozen steps.
- **Saturation** (Karpathy, Johnson & Fei-Fei 2015): per model and sigmoid gate of its
  top layer, one point per unit at (fraction of steps shut < 0.1, fraction open > 0.9) over
  its first sequence; clicking a point selects that unit and names it.

:func:`compare_runs` does the same for run folders (``lstmlens inspect RUN ... --compare``):
a text run reads one text, a long-range race contributes every cell it raced, each read on
``sequences`` test sequences of its task.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .compare_measures import MARK_WINDOW, Measures, measure, relative_reach, window_median
from .compare_svg import reach_figure, saturation_svg
from .memory_path import memory_name
from .stats import SIGMOID_GATES, one_sequence, saturation
from .trace import _find_module, inspect

__all__ = ["compare_page", "compare_runs", "reach_figure", "relative_reach"]

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
        plots.append(saturation_svg(sat.left, sat.right, gate))
    body = "".join(plots) or '<p class="muted">no gates: a plain RNN has nothing to saturate</p>'
    return (
        f'<div class="model" data-name="{html.escape(name)}"><h3>{html.escape(name)} '
        f'<span class="muted">({trace.kind.upper()}, top layer)</span></h3>{body}</div>'
    )


def _first(x: Any) -> Any:
    return x[0] if isinstance(x, list) else x


def _cell(value: float) -> str:
    return "<td></td>" if value != value else f"<td>{value:.2e}</td>"  # NaN: blank


def _table(table_id: str, columns: list[str], lags: list[int], rows: list[list[Any]]) -> str:
    """``rows``: [name, *column values, values at ``lags`` (NaN for none)]."""
    head = "".join(f"<th>{c}</th>" for c in ["model", *columns])
    head += "".join(f"<th>k = {k}</th>" for k in lags)
    body = "".join(
        f"<tr><td>{html.escape(row[0])}</td>"
        + "".join(f"<td>{v}</td>" for v in row[1 : 1 + len(columns)])
        + "".join(map(_cell, row[1 + len(columns) :]))
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _at(curve: np.ndarray | None, k: int) -> float:
    return float(curve[k]) if curve is not None and k < len(curve) else float("nan")


def _reach_section(measured: Mapping[str, Measures], kinds: Mapping[str, str]) -> str:
    curves = {name: m.reach for name, m in measured.items()}
    lags = [k for k in LAGS if any(k < len(c) for c in curves.values())]
    reach_rows = [
        [name, len(m.reach) - 1, m.sequences, *(_at(m.reach, k) for k in lags)]
        for name, m in measured.items()
    ]
    out = [
        "<h2>Memory reach (log scale)</h2>",
        "<p>Line: the median over the sequences of reach<sub>k</sub> / reach<sub>0</sub>, "
        "where reach<sub>k</sub> = ||d y<sub>t</sub> / d x<sub>t-k</sub>|| (Frobenius norm of "
        "the Jacobian of the top layer's output at the output step t with respect to the "
        "input k steps earlier): how much the output still changes when that input changes."
        + (
            " Dots: the same ratio at each input the task marks as needed for the answer."
            if any(m.marked is not None for m in measured.values())
            else ""
        )
        + "</p>",
        reach_figure(
            curves, points={n: m.marked for n, m in measured.items() if m.marked is not None}
        ),
        "<h3>Reach to every input (median over the sequences)</h3>",
        _table("reach-table", ["lags", "sequences"], lags, reach_rows),
    ]
    marked = {name: m.marked for name, m in measured.items() if m.marked is not None}
    if marked:
        rows = [[name, len(m), *(window_median(m, k) for k in lags)] for name, m in marked.items()]
        out += [
            f"<h3>Reach to the marked inputs (median of the dots within {MARK_WINDOW} steps "
            "of k)</h3>",
            _table("marked-table", ["marked inputs"], lags, rows),
        ]
    out.append(
        '<p class="muted">A fall by orders of magnitude within a few dozen steps is the '
        "vanishing gradient: what happened earlier can no longer change the output, so the "
        "model cannot learn to use it. Where most inputs are noise, a model that learned the "
        "task rightly ignores them: read the dots (the inputs the answer needs) to see what "
        "it keeps.</p>"
    )
    paths = {name: m.path for name, m in measured.items() if m.path is not None}
    if paths:
        rows = [[name, f"{kinds[name]}", *(_at(p, k) for k in lags)] for name, p in paths.items()]
        out += [
            "<h2>The memory path (log scale)</h2>",
            "<p>||d m<sub>t</sub> / d m<sub>t-k</sub>|| / ||d m<sub>t</sub> / d m<sub>t</sub>||"
            ", the median over the sequences: m is the memory of the top layer, an LSTM's cell "
            "state c, a GRU's or an RNN's hidden state h; the rest of the state k steps back "
            "is held fixed (the denominator, the identity's norm, is &radic;H). How much of "
            "the memory k steps back still reaches step t, whatever was written into it: "
            "the path the gradient travels in training.</p>",
            reach_figure(paths, label="||dm_t / dm_(t-k)|| / √H"),
            _table("path-table", ["memory"], lags, rows),
            '<p class="muted">A plain RNN multiplies its memory by a Jacobian at every step '
            "and it shrinks geometrically; an LSTM's cell is carried mostly by its forget gate "
            "(c<sub>t</sub> = f &middot; c<sub>t-1</sub> + i &middot; g), so with f near 1 "
            "it stays near 1: the constant error carousel.</p>",
        ]
    return "\n".join(out)


def compare_page(
    models: Mapping[str, Any],
    x: Any,
    *,
    t: int | None = None,
    title: str = "lstmlens: how far back each model remembers",
    relevant: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """One HTML page comparing ``models`` (name -> model) on their memory reach and saturation.

    ``x`` is the input for every model, or a mapping name -> input; an input is one sequence
    as :func:`~lstmlens.lens.memory_reach` takes it, or a list of sequences (the curves are
    then medians over them, see :mod:`.compare_measures`). ``relevant`` (name -> one bool
    vector per sequence) marks the inputs the task needs; their reach is drawn as dots. ``t``
    is the output step (default the last step of each input). Returns the HTML as a string.
    """
    if not models:
        raise ValueError("compare_page: expected at least one model, got none")
    inputs = x if isinstance(x, Mapping) else dict.fromkeys(models, x)
    missing = [name for name in models if name not in inputs]
    if missing:
        raise ValueError(f"compare_page: no input for {missing}")
    marks = relevant or {}
    measured = {
        name: measure(model, inputs[name], t, marks.get(name)) for name, model in models.items()
    }
    kinds = {name: memory_name(_find_module(m, None)) for name, m in models.items()}
    panels = "".join(_saturation_panel(name, m, _first(inputs[name])) for name, m in models.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<header><h1>{html.escape(title)}</h1>
<p class="muted">{len(models)} models: how far back each one still listens, and how its gates
saturate. Every number is an exact derivative, in float64.</p></header>
<section>{_reach_section(measured, kinds)}</section>
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


class _Read(NamedTuple):
    """What a run's models read on the page: ``text`` and ``max_steps`` (text runs), the
    number of ``sequences`` of a long-range task."""

    text: str | None
    max_steps: int
    sequences: int


class _Input(NamedTuple):
    """What one model reads: ``x`` (one sequence or a list) and, where the task knows them,
    the steps its answer needs (``relevant``: one bool vector per sequence)."""

    x: Any
    relevant: list[Any] | None = None


def _text_input(model: Any, config: dict[str, Any], read: _Read) -> _Input:
    """Token ids (1, T) of ``read.text`` (default: text the model writes, seed 0), first steps."""
    import torch

    text = read.text
    if text is None:
        text = model.generate(prompt="", length=read.max_steps, temperature=0.8, seed=0)
    tokens = model.tokenizer.split(text)[: read.max_steps]
    if not tokens:
        raise ValueError("compare_runs: the input text has no tokens")
    return _Input(torch.tensor([[model.tokenizer.stoi.get(tok, 0) for tok in tokens]]))  # (1, T)


def _longrange_input(model: Any, config: dict[str, Any], read: _Read) -> _Input:
    """``read.sequences`` test sequences of the run's long-range task (seed 0), each
    ``(1, L_i, I)`` cut to its own length, and the steps the task marks as needed."""
    import torch

    from lstmlens.tasks.longrange import make_task

    problem = config.get("problem")
    if isinstance(problem, dict):  # a run folder of lstmlens longrange --out
        options = problem.get("options") or {}
        task = make_task(str(problem.get("name")), int(problem.get("length", 0)), **options)
    else:
        name = problem or config.get("task_name") or config.get("name")
        if not isinstance(name, str) or "length" not in config:
            raise ValueError(
                "compare_runs: a longrange run's config.json must name its problem "
                f"('problem') and 'length'; got keys {sorted(config)}"
            )
        task = make_task(name, int(config["length"]))
    batch = task.sample(read.sequences, torch.Generator().manual_seed(0))
    ends = [batch.inputs.shape[1]] * read.sequences if batch.lengths is None else batch.lengths
    needed = task.relevant_steps(batch)  # (B, L) bool
    return _Input(
        [batch.inputs[i : i + 1, : int(end)] for i, end in enumerate(ends)],
        [needed[i, : int(end)].numpy() for i, end in enumerate(ends)],
    )


#: config.json "task" -> what that task's models read
_INPUTS: dict[str, Callable[[Any, dict[str, Any], _Read], _Input]] = {
    "language": _text_input,
    "text": _text_input,
    "longrange": _longrange_input,
}


def _load(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """({name: model}, config) of a run folder: one model, or every cell of a long-range
    race (named ``cell``); ``lstmlens.load_run`` where it exists, else text runs."""
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
        if isinstance(model, torch.nn.ModuleDict):  # a long-range race: every cell
            return dict(model.items()), config
        return {"": model}, config
    if task in ("language", "text"):
        from lstmlens.tasks.language import load_language_model

        return {"": load_language_model(run_dir)[0]}, config
    raise ValueError(f"compare_runs: loading a {task!r} run needs lstmlens.load_run")


def compare_runs(
    run_dirs: Sequence[str | os.PathLike[str]],
    html_path: str | os.PathLike[str],
    *,
    text: str | None = None,
    max_steps: int = 200,
    sequences: int = 50,
) -> Path:
    """Write the :func:`compare_page` of several run folders to ``html_path``.

    Each model reads its own task: a text run the first ``max_steps`` tokens of ``text``
    (default: text it writes itself), every cell of a long-range race ``sequences`` test
    sequences of its problem (the curves are medians over them; the steps the task
    marks as needed are drawn as dots). A model is named after its folder, a raced cell
    ``FOLDER/CELL``; two folders of the same name are told apart by their parent.
    """
    from .html import write_page

    if not run_dirs:
        raise ValueError("compare_runs: expected at least one run folder")
    if not isinstance(sequences, int) or isinstance(sequences, bool) or sequences < 1:
        raise ValueError(f"compare_runs: sequences must be a positive int, got {sequences!r}")
    read = _Read(text, max_steps, sequences)
    models: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    relevant: dict[str, Any] = {}
    for run in map(Path, run_dirs):
        cells, config = _load(run)
        folder = (
            run.name
            if run.name not in {n.split("/")[0] for n in models}
            else (f"{run.parent.name}/{run.name}")
        )
        for cell, model in cells.items():
            name = f"{folder}/{cell}" if cell else folder
            models[name] = model
            inputs[name], needed = _INPUTS[config["task"]](model, config, read)
            if needed is not None:
                relevant[name] = needed
    title = "lstmlens: " + " vs ".join(models)
    return write_page(compare_page(models, inputs, title=title, relevant=relevant), html_path)
