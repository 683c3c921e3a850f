"""``lstmlens inspect RUN``: write the lens page (and PNGs) of a trained text or forecast model.

    lstmlens inspect runs/NAME [--input TEXT|FILE] [--html lens.html] [--png DIR]
                     [--max-steps N]

A text run is fed ``--input`` (a file name, or else the text itself); without it, the
validation part of the corpus recorded in its config (``config["corpus"]``: a file that
still exists, or the default ``pydoc_data``), or else text the model writes (seed 0).
A forecast run is shown over its own series (``config["data"]``: the co2 default or its
CSV), or over ``--input``, a CSV in the same format (same target, date, covariates, fill);
a forecast page shows the last ``--max-steps`` steps, a text page the first. The page
goes to ``--html`` (default ``RUN/lens.html``), the pictures to ``--png``.

The train commands call :func:`text_run_lens` / :func:`forecast_run_lens` to leave a
``lens.html`` in every run folder; both go through :func:`write_text_lens` /
:func:`write_series_lens`, as this command does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .common import CLIError, add_threads_arg, positive_int

__all__ = [
    "LENS_CHARS",
    "forecast_run_lens",
    "register",
    "run",
    "text_run_lens",
    "validation_text",
    "window_ends",
    "write_series_lens",
    "write_text_lens",
]

#: Characters of validation text the page written by ``text train`` shows.
LENS_CHARS = 1000
#: Windows traced at once for a forecast page (bounds the memory of the recording).
_CHUNK = 512


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand to the ``lstmlens`` parser."""
    p = subparsers.add_parser(
        "inspect",
        help="look inside every gate of a trained model (HTML page, PNG plots)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run", metavar="RUN", help="a run folder written by a train command")
    p.add_argument("more_runs", nargs="*", metavar="RUN", help="more runs, with --compare")
    p.add_argument(
        "--compare",
        action="store_true",
        help="one page with every RUN's memory reach and gate saturation side by side",
    )
    p.add_argument(
        "--input",
        metavar="TEXT|FILE",
        help="what to feed the model: a file (a CSV for a forecast run), or the text itself",
    )
    p.add_argument("--html", metavar="PATH", help="where to write the page (RUN/lens.html)")
    p.add_argument("--png", metavar="DIR", help="also write PNG plots into DIR")
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=1000,
        metavar="N",
        help="show at most N steps: a text's first, a series' last (1000)",
    )
    add_threads_arg(p)
    p.set_defaults(func=run)
    return p


def _config(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise CLIError(f"inspect: {run_dir} is not a run folder (no such folder)")
    path = run_dir / "config.json"
    if not path.is_file():
        raise CLIError(f"inspect: {run_dir} is not a run folder (no config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CLIError(f"inspect: {path} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CLIError(f"inspect: {path} should hold a JSON object")
    return config


def _kind(config: dict[str, Any], run_dir: Path) -> str:
    """``"language"`` or ``"forecast"``: what the run's ``config.json`` says it holds.

    A text run records ``task: "language"``; a forecast run ``format: "lstmlens-forecast"``.
    """
    from lstmlens.tasks.forecast import FORMAT

    if config.get("task") == "language":
        return "language"
    if config.get("format") == FORMAT or config.get("task") == "forecast":
        return "forecast"
    what = config.get("task") or config.get("format")
    if what is None:
        raise CLIError(f"inspect: {run_dir / 'config.json'} names no task (text or forecast)")
    raise CLIError(
        f"inspect: {run_dir} holds a {what!r} run; the lens reads text and forecast runs"
    )


def write_text_lens(
    model: Any,
    text: str,
    html_path: str | os.PathLike[str],
    *,
    png_dir: str | os.PathLike[str] | None = None,
    max_steps: int = 1000,
    title: str = "lstmlens: inside the gates",
) -> list[Path]:
    """Write the lens page of a text model fed ``text`` (its first ``max_steps`` tokens).

    ``model`` is a :class:`lstmlens.tasks.language.LanguageModel` (it needs ``tokenizer``
    and ``model(ids (1, T))``). With ``png_dir``, also the standard plots and the text
    coloured by the three most interpretable units. Returns the files written.
    """
    import torch

    from lstmlens.lens.html import text_page, write_page
    from lstmlens.lens.plots import save_png, text_heat_figure, write_pngs
    from lstmlens.lens.stats import interpretable_units, one_sequence, text_signals
    from lstmlens.lens.trace import inspect

    tokenizer = model.tokenizer
    tokens = tokenizer.split(text)[:max_steps]
    if not tokens:
        raise CLIError("inspect: the input has no tokens")
    device = next(model.parameters()).device
    ids = torch.tensor([[tokenizer.stoi.get(t, 0) for t in tokens]], device=device)  # (1, T)
    trace = inspect(model, ids)
    pieces = list(tokenizer.pieces(tokens))  # what each step writes, spaces included
    written = [write_page(text_page(trace, pieces, title=title), html_path)]
    if png_dir is not None:
        out = Path(png_dir)
        written += write_pngs(trace, out, tokens=pieces)
        for best in interpretable_units(trace, text_signals(pieces), k=3, batch_index=0):
            values = one_sequence(
                trace.gate(best.gate, best.layer, best.direction),
                lengths=trace.lengths,
                batch_first=trace.batch_first,
            )[:, best.unit]  # (T,)
            what = f"layer {best.layer} {best.gate} unit {best.unit}"
            signal = best.signal.replace("_", " ")
            fig = text_heat_figure(
                pieces[:600], values[:600], title=f"{what}: r = {best.r:+.2f} with {signal}"
            )
            written.append(save_png(fig, out / f"unit_l{best.layer}_{best.gate}{best.unit}.png"))
    return written


class _WindowEnds:
    """The gates at the last step of each of ``N`` windows, read as one sequence of N steps.

    Has what the lens page and plots read from a trace (``kind``, ``gate_names``, the sizes,
    ``gate()``); ``gate(name, layer, direction)`` is ``(N, H)``: row n is the last step of
    window n, i.e. the state the forecaster's head reads for that window.
    """

    def __init__(self, like: Any, gates: dict[tuple[str, int, int], np.ndarray]) -> None:
        self.kind, self.gate_names = like.kind, tuple(like.gate_names)
        self.num_layers, self.num_directions = like.num_layers, like.num_directions
        self.hidden_size = like.hidden_size
        self.batch_first, self.batched, self.lengths = False, False, None
        self._gates = gates

    @property
    def steps(self) -> int:
        return len(next(iter(self._gates.values())))

    def gate(self, name: str, layer: int = 0, direction: int = 0) -> np.ndarray:
        return self._gates[name, layer, direction]


def window_ends(
    forecaster: Any, series: Any, start: int = 0, stop: int | None = None
) -> tuple[Any, int]:
    """Trace a forecaster over the steps ``t`` in ``[start, stop)`` of ``series``.

    Step ``t`` is read through the window of the ``W`` rows up to it (``t-W+1 .. t``, the
    origin ``t+1``): the gates recorded at its last step are the memory the model's
    forecast of ``t+1`` is made from. Steps before ``W-1`` have no full window and are
    skipped, so the result starts at ``max(start, W-1)``. Returns ``(trace, first)``: a
    trace-like object whose gates are ``(N, H)``, and the first step it shows.
    """
    from lstmlens.lens.trace import inspect

    window = forecaster.config.window
    n = len(series)
    stop = n if stop is None else min(int(stop), n)
    first = max(int(start), window - 1)
    if n < window:
        raise ValueError(f"lens: {series.name!r} has {n} rows, fewer than the window of {window}")
    if first >= stop:
        raise ValueError(f"lens: no step to show in [{start}, {stop}) of {series.name!r}")
    if series.covariate_names != forecaster.covariates:
        raise ValueError(
            f"lens: the model reads covariates {list(forecaster.covariates)}, "
            f"the series has {list(series.covariate_names)}"
        )
    if forecaster.config.log and not np.all(series.values > 0):
        raise ValueError(f"lens: the model reads log({series.name}), which needs values > 0")
    origins = np.arange(first + 1, stop + 1)  # the window of step t ends at t, forecasts t+1
    pieces: dict[tuple[str, int, int], list[np.ndarray]] = {}
    for chunk in np.array_split(origins, math.ceil(len(origins) / _CHUNK)):
        trace = inspect(forecaster.net, forecaster.inputs(series, chunk))  # x: (n, W, F)
        for layer in range(trace.num_layers):
            for d in range(trace.num_directions):
                for name in trace.gate_names:
                    last = trace.gate(name, layer, d)[:, -1]  # (n, W, H) -> (n, H)
                    pieces.setdefault((name, layer, d), []).append(last.double().numpy())
    gates = {key: np.concatenate(parts) for key, parts in pieces.items()}  # (N, H) each
    return _WindowEnds(trace, gates), first


def write_series_lens(
    forecaster: Any,
    series: Any,
    html_path: str | os.PathLike[str],
    *,
    start: int = 0,
    stop: int | None = None,
    png_dir: str | os.PathLike[str] | None = None,
    title: str = "lstmlens: inside the gates",
) -> list[Path]:
    """Write the lens page of a forecaster over the steps ``[start, stop)`` of ``series``.

    ``forecaster`` is a fitted :class:`lstmlens.tasks.forecast.Forecaster`, ``series`` a
    :class:`lstmlens.data.series.Series` it can read. The page shows the target in its own
    units with, under each step, the gates the model had after reading the window that
    ends there (see :func:`window_ends`). With ``png_dir``, also the standard plots.
    Returns the files written.
    """
    from lstmlens.lens.html import series_page, write_page
    from lstmlens.lens.plots import write_pngs

    trace, first = window_ends(forecaster, series, start, stop)
    last = first + trace.steps - 1
    y = series.values[first : last + 1]  # (N,)
    when = ""
    if hasattr(series.index[first], "date"):
        when = f", {series.index[first].date()} .. {series.index[last].date()}"
    heading = f"{title} (each step: the gates after the {forecaster.config.window}-step window"
    heading += f" ending there{when})"
    page = series_page(trace, y, series_name=series.name, title=heading)
    written = [write_page(page, html_path)]
    if png_dir is not None:
        written += write_pngs(trace, png_dir)
    return written


def validation_text(corpus: str, val_fraction: float) -> str:
    """The validation part of a corpus: its last ``val_fraction`` of characters."""
    return corpus[int(len(corpus) * (1.0 - val_fraction)) :]


def _text_input(args: argparse.Namespace, model: Any, config: dict[str, Any]) -> str:
    """``--input`` (a file, or the text itself); else the validation part of the recorded
    corpus (``config["corpus"]``: a path, or ``"pydoc_data"`` for the default); else text the
    model writes itself."""
    from lstmlens.data.text import read_corpus

    if args.input is not None:
        path = Path(args.input)
        text = read_corpus(path) if path.is_file() else args.input
    else:
        corpus = config.get("corpus")
        if corpus == "pydoc_data":  # what ``text train`` records for its default corpus
            from lstmlens.data.datasets import load_pydoc_text

            corpus = load_pydoc_text()
        elif isinstance(corpus, str) and Path(corpus).is_file():
            corpus = read_corpus(corpus)
        else:
            corpus = None
        if corpus is not None:
            text = validation_text(corpus, float(config.get("val_fraction", 0.1)))
        else:
            text = model.generate(prompt="", length=args.max_steps, temperature=0.8, seed=0)
    if not text:
        raise CLIError("inspect: the input text is empty")
    return text


def _after_training(write: Any, what: str) -> Path | None:
    """Run ``write()`` (a lens writer); a failure is one warning line, not a failed run."""
    try:
        return write()[0]
    except (CLIError, ValueError, OSError) as e:
        print(f"lstmlens: warning: no lens page for {what}: {e}", file=sys.stderr)
        return None


def text_run_lens(model: Any, corpus: str, val_fraction: float, run_dir: Path) -> Path | None:
    """``RUN/lens.html`` of a text model just trained: the first :data:`LENS_CHARS`
    characters of the validation part. Returns the page, or None (with a warning)."""
    text = validation_text(corpus, val_fraction)[:LENS_CHARS]
    title = f"lstmlens lens: {Path(run_dir).name}"
    return _after_training(
        lambda: write_text_lens(model, text, Path(run_dir) / "lens.html", title=title), "the run"
    )


def forecast_run_lens(forecaster: Any, series: Any, split: Any, run_dir: Path) -> Path | None:
    """``RUN/lens.html`` of a forecaster just trained, over the test part of its series
    (rows from ``split.val_end``). Returns the page, or None (with a warning)."""
    title = f"lstmlens lens: {Path(run_dir).name}"
    return _after_training(
        lambda: write_series_lens(
            forecaster, series, Path(run_dir) / "lens.html", start=split.val_end, title=title
        ),
        "the run",
    )


def _forecast(args: argparse.Namespace, run_dir: Path, html_path: Path, title: str) -> list[Path]:
    """The forecast page: the run's own series (or ``--input``), its last ``--max-steps``."""
    from lstmlens.tasks.forecast import Forecaster

    from .forecast import run_series

    forecaster, config = Forecaster.load(run_dir)
    spec = config.get("data")
    if args.input is None and isinstance(spec, dict) and spec.get("source") == "csv":
        if not Path(str(spec.get("path"))).is_file():
            raise CLIError(
                f"inspect: the run's data {spec.get('path')} is gone; pass --input DATA.csv"
            )
    series = run_series(run_dir, forecaster, config, args.input, option="--input")
    start = max(0, len(series) - args.max_steps)
    return write_series_lens(
        forecaster, series, html_path, start=start, png_dir=args.png, title=title
    )


def _compare(args: argparse.Namespace) -> int:
    """``--compare``: :func:`lstmlens.lens.compare.compare_runs` (page in --html)."""
    from lstmlens.lens.compare import compare_runs

    if not args.compare:
        raise CLIError("inspect: several runs need --compare")
    if args.html is None:
        raise CLIError("inspect --compare: pass --html PATH for the comparison page")
    text = args.input
    if text is not None and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    runs = [args.run, *args.more_runs]
    try:
        print(compare_runs(runs, args.html, text=text, max_steps=args.max_steps))
    except ValueError as e:
        raise CLIError(f"inspect: {e}") from None
    return 0


def run(args: argparse.Namespace) -> int:
    """Write the lens page (and PNGs) for ``args.run``; returns the exit status."""
    if args.compare or args.more_runs:
        return _compare(args)
    run_dir = Path(args.run)
    kind = _kind(_config(run_dir), run_dir)
    title = f"lstmlens lens: {run_dir.name}"
    html_path = Path(args.html) if args.html else run_dir / "lens.html"
    if not html_path.parent.is_dir():
        raise CLIError(f"inspect: cannot write {html_path}: no folder {html_path.parent}")
    if kind == "language":
        from lstmlens.tasks.language import load_language_model

        model, config = load_language_model(run_dir)
        text = _text_input(args, model, config)
        written = write_text_lens(
            model, text, html_path, png_dir=args.png, max_steps=args.max_steps, title=title
        )
    else:
        written = _forecast(args, run_dir, html_path, title)
    for path in written:
        print(path)
    return 0
