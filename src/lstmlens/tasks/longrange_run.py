"""A long-range race as a run folder: train every cell, save them, load them, look inside.

``race(problem, cells, config, progress, run_dir)`` runs :func:`compare_cells`; with a
``run_dir`` the folder holds

* ``config.json``: ``task: "longrange"``, ``format_version``, ``problem`` (``name``,
  ``length``, ``options``), ``cells`` and ``compare`` (the :class:`CompareConfig`);
* ``model.safetensors``: every cell's trained :class:`LongRangeModel`, as one
  ``nn.ModuleDict`` keyed by cell name (what :func:`load_longrange_run` returns);
* ``metrics.json``: the task, its memoryless baseline and each cell's result and history.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import save_json_atomic, stamp
from ..train import load_model, save_model
from .longrange import LongRangeTask, make_task
from .longrange_compare import CellResult, CompareConfig, LongRangeModel, Progress, compare_cells

__all__ = ["inspect_longrange_run", "load_longrange_run", "race", "results_json"]


def results_json(task: LongRangeTask, config: CompareConfig, results: list[CellResult]) -> dict:
    """The race as JSON: task, length, baseline loss, the budget and every cell's result."""
    return {
        "task": task.name,
        "length": task.length,
        "baseline_loss": task.baseline_loss,
        "config": asdict(config),
        "results": [asdict(r) for r in results],
    }


def race(
    task: LongRangeTask,
    options: dict[str, int],
    cells: list[str],
    config: CompareConfig,
    progress: Progress | None = None,
    run_dir: Path | None = None,
) -> list[CellResult]:
    """Race ``cells`` on ``task`` (made with ``options``); save them into ``run_dir`` if given."""
    models: dict[str, nn.Module] = {}
    results = compare_cells(task, cells, config, progress, models)
    if run_dir is not None:
        saved = {
            "problem": {"name": task.name, "length": task.length, "options": dict(options)},
            "cells": list(models),
            "compare": asdict(config),
        }
        save_model(run_dir, nn.ModuleDict(models), stamp("longrange", saved))
        save_json_atomic(run_dir / "metrics.json", results_json(task, config, results))
    return results


def _task(config: dict[str, Any]) -> LongRangeTask:
    problem = config["problem"]
    return make_task(problem["name"], int(problem["length"]), **problem.get("options", {}))


def load_longrange_run(run_dir: str | Path) -> tuple[nn.ModuleDict, dict[str, Any]]:
    """Every cell's model of a race (``nn.ModuleDict`` by cell name) and the config."""
    where = Path(run_dir) / "config.json"

    def build(config: dict[str, Any]) -> nn.ModuleDict:
        try:
            task, compare = _task(config), config["compare"]
            return nn.ModuleDict(
                {
                    cell: LongRangeModel(
                        task,
                        cell,
                        compare["hidden_size"],
                        compare["forget_bias"],
                        compare.get("forget_init", "constant"),  # older runs: constant
                    )
                    for cell in config["cells"]
                }
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: bad long-range run description ({e})") from None

    return load_model(run_dir, build)


def _step_values(task: LongRangeTask, inputs: torch.Tensor) -> tuple[Any, str]:
    """One number per step to draw above the gates: the value (adding) or the symbol."""
    x = inputs[0]  # (L, I)
    if task.name == "adding":
        return x[:, 0].double().numpy(), "value (marked steps are summed)"
    return x.argmax(-1).double().numpy(), "symbol"


def inspect_longrange_run(
    run_dir: Path,
    models: nn.ModuleDict,
    config: dict[str, Any],
    html_path: Path,
    *,
    cell: str | None = None,
    png_dir: str | None = None,
    max_steps: int = 1000,
    title: str = "",
    seed: int = 0,
) -> list[Path]:
    """The lens page of one cell of a race (default: ``lstm`` if raced, else the first) over
    one task sequence drawn with ``seed``."""
    from ..lens.pages import write_sequence_lens

    names = list(models.keys())
    cell = cell or ("lstm" if "lstm" in names else names[0])
    if cell not in names:
        raise ValueError(f"inspect: {run_dir} has no cell {cell!r}; it raced {', '.join(names)}")
    task = _task(config)
    batch = task.sample(1, torch.Generator().manual_seed(seed))
    inputs = batch.inputs[:, :max_steps]  # (1, L, I)
    lengths = None if batch.lengths is None else batch.lengths.clamp(max=inputs.shape[1])
    values, name = _step_values(task, inputs)
    if lengths is not None:
        values, inputs = values[: int(lengths[0])], inputs[:, : int(lengths[0])]
    return write_sequence_lens(
        models[cell],
        inputs,
        values,
        html_path,
        name=f"{task.name}: {name}",
        png_dir=png_dir,
        title=f"{title} ({cell})",
    )
