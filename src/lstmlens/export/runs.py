"""Export a whole run folder: ``lstmlens export RUN --format onnx|exported-program --output PATH``.

A run's task is read from its ``config.json``; each task registers how its run becomes a graph
and what the sidecar JSON (written next to the ``.onnx`` as ``PATH`` with suffix ``.json``)
tells the serving side: the inputs and outputs, the pre- and post-processing outside the graph,
the vocabulary or classes. ``examples/serve_onnx.py`` reads nothing else.

=========  =========================================  =========================================
task       graph inputs                               graph outputs
=========  =========================================  =========================================
forecast   ``history`` (B, W, F) float64, data units  ``forecast`` (B, S, Q) float64, data units
language   ``tokens`` (B, T) int64, ``h0``, ``c0``    ``logits`` (B, T, V), ``h_n``, ``c_n``
classify   ``x`` (B, L, F) / ``tokens``, ``lengths``  ``logits``, ``probabilities`` (B, C)
=========  =========================================  =========================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .forecast import forecast_run
from .graph import DEFAULT_OPSET, Graph
from .modules import classifier_graph, language_graph

__all__ = ["FORMATS", "RUNS", "SIDECAR_FORMAT", "export_run", "sidecar_path", "task_of"]

SIDECAR_FORMAT = "lstmlens-onnx-sidecar"

RunGraph = Callable[[Graph, Path, dict[str, Any]], dict[str, Any]]


def _language_run(g: Graph, run: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from ..tasks.language import load_language_model

    model, cfg = load_language_model(run)
    model.eval()
    language_graph(g, model, with_state=True)
    lstm = model.lstm
    return {
        "inputs": {
            "tokens": "(B, T) int64: token ids (tokenizer below; 0 is <unk>)",
            "h0": f"({lstm.num_layers}, B, {lstm.proj_size or lstm.hidden_size}) float32: "
            "zeros to start, else the h_n of the previous call",
            "c0": f"({lstm.num_layers}, B, {lstm.hidden_size}) float32: likewise with c_n",
        },
        "outputs": {
            "logits": f"(B, T, {model.vocab_size}) float32: next-token scores at every step",
            "h_n": "the state after the last token",
            "c_n": "the cell state after the last token",
        },
        "preprocessing": (
            "split the text into tokens (char: code points; word: the regex below), lower-case "
            "first when 'lower'; unknown tokens -> 0; an empty prompt starts from the newline "
            "token; a prompt of unknown tokens only is refused"
        ),
        "postprocessing": "next-token probabilities = softmax(logits[:, -1]) in float64",
        "tokenizer": model.tokenizer.to_dict(),
        "word_regex": r"<unk>|\w+(?:'\w+)*|[^\w\s]|\n",
        "state_shapes": {
            "h": [lstm.num_layers, lstm.proj_size or lstm.hidden_size],
            "c": [lstm.num_layers, lstm.hidden_size],
        },
    }


def _classify_run(g: Graph, run: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from ..tasks.classify_run import load_classifier

    model, cfg = load_classifier(run)
    model.eval()
    C = int(model.config["num_classes"])
    logits = classifier_graph(g, model)
    if model.text:
        inputs = {"tokens": "(B, L) int64: token ids of the first max_tokens tokens, 0-padded"}
        pre = "tokenise as the language task does (tokenizer below), keep max_tokens"
    else:
        F = int(model.config["input_size"])
        inputs = {"x": f"(B, L, {F}) float32: the feature columns, rows in time order, 0-padded"}
        pre = "group the CSV rows by the id column, order each group by the time column"
    inputs["lengths"] = "(B,) int64: the real length of each sequence"
    g.output(logits, "logits", ["batch", C])
    g.output(g.op("Softmax", logits, axis=-1), "probabilities", ["batch", C])
    return {
        "inputs": inputs,
        "outputs": {"logits": f"(B, {C}) float32", "probabilities": f"(B, {C}) float32"},
        "preprocessing": pre + "; pad a batch with zeros to its longest sequence",
        "postprocessing": "predicted class = classes[argmax(probabilities)]",
        "classes": list(cfg["classes"]),
        "data": cfg["data"],
        "pooling": model.pooling,
    }


#: task -> how its run folder becomes a graph and a sidecar
RUNS: dict[str, RunGraph] = {
    "forecast": forecast_run,
    "language": _language_run,
    "classify": _classify_run,
}


def task_of(cfg: dict[str, Any], where: Path) -> str:
    """The task of a run's config: its ``task`` field, or what older configs carry."""
    task = cfg.get("task")
    if task == "text":  # text runs say "text" since format_version 1 ("language" before)
        task = "language"
    if task is None and cfg.get("format") == "lstmlens-forecast":
        task = "forecast"
    if task is None and "classes" in cfg and "model" in cfg:
        task = "classify"
    if task not in RUNS:
        raise ValueError(
            f"{where}: cannot export a {task!r} run; exportable tasks: {', '.join(sorted(RUNS))}"
        )
    return str(task)


def sidecar_path(output: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(output).with_suffix(".json")


def _onnx_run(run: Path, cfg: dict[str, Any], task: str, output: Path, opset: int) -> list[Path]:
    import lstmlens

    from ..train.checkpoint import save_json_atomic
    from .onnx import require_onnx, save_onnx

    require_onnx()
    g = Graph(f"lstmlens_{task}")
    side = RUNS[task](g, run, cfg)
    proto = g.model(opset, doc=f"lstmlens {task} run {run.name}; see the sidecar JSON")
    written = [save_onnx(proto, output)]
    head = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "task": task,
        "onnx": output.name,
        "run": str(run.resolve()),
        "lstmlens_version": lstmlens.__version__,
        "opset": opset,
    }
    written.append(save_json_atomic(sidecar_path(output), {**head, **side}))
    return written


def _program_run(run: Path, cfg: dict[str, Any], task: str, output: Path, opset: int) -> list[Path]:
    from .program import exported_program_run

    return [exported_program_run(run, task, output)]


#: --format -> writer of the run's files
FORMATS: dict[str, Callable[[Path, dict[str, Any], str, Path, int], list[Path]]] = {
    "onnx": _onnx_run,
    "exported-program": _program_run,
}


def export_run(
    run: str | os.PathLike,
    output: str | os.PathLike,
    format: str = "onnx",
    force: bool = False,
    opset: int = DEFAULT_OPSET,
) -> list[Path]:
    """Export run folder ``run`` to ``output``; returns the files written.

    Bad input raises ``ValueError`` with one line: no run folder, an unreadable or foreign
    ``config.json``, an unknown ``format``, an existing output without ``force``.
    """
    from ..train.checkpoint import read_json

    run, output = Path(run), Path(output)
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if not (run / "config.json").is_file():
        raise ValueError(f"{run}: not a run folder (no config.json)")
    cfg = read_json(run / "config.json")
    if not isinstance(cfg, dict):
        raise ValueError(f"{run / 'config.json'}: not a run configuration")
    task = task_of(cfg, run / "config.json")
    targets = [output, sidecar_path(output)] if format == "onnx" else [output]
    if len(set(targets)) < len(targets):
        raise ValueError(f"{output}: the ONNX file needs another suffix than .json (the sidecar's)")
    if not force:
        for path in targets:
            if path.exists():
                raise ValueError(f"{path} exists; use --force to replace it")
    return FORMATS[format](run, cfg, task, output, opset)
