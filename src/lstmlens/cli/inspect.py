"""``lstmlens inspect RUN``: write the lens page (and PNGs) of a trained text or forecast model.

    lstmlens inspect runs/NAME [--input TEXT|FILE] [--html lens.html] [--png DIR]
                     [--max-steps N]

A text run is fed ``--input`` (a file name, or else the text itself); without it, the
validation part of the corpus recorded in its config (``config["corpus"]``: a file that
still exists, or the default ``pydoc_data``), or else text the model writes (seed 0).
A forecast run is fed its whole series (``--input`` a CSV in the same format as for
training, or else its own data). The page goes to ``--html`` (default ``RUN/lens.html``),
the pictures to ``--png``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from pathlib import Path
from typing import Any

from .common import CLIError, positive_int

__all__ = ["register", "run", "write_series_lens", "write_text_lens"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand to the ``lstmlens`` parser."""
    p = subparsers.add_parser(
        "inspect",
        help="look inside every gate of a trained model (HTML page, PNG plots)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run", metavar="RUN", help="a run folder written by a train command")
    p.add_argument(
        "--input",
        metavar="TEXT|FILE",
        help="what to feed the model: a file, or for a text model the text itself",
    )
    p.add_argument("--html", metavar="PATH", help="where to write the page (RUN/lens.html)")
    p.add_argument("--png", metavar="DIR", help="also write PNG plots into DIR")
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=1000,
        metavar="N",
        help="show at most the first N steps (1000)",
    )
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


def _inspect(model: Any, x: Any) -> Any:
    import lstmlens

    record = getattr(lstmlens, "inspect", None)
    if record is None:
        raise CLIError("inspect: this build of lstmlens has no lstmlens.inspect (lens/trace.py)")
    return record(model, x)


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

    tokenizer = model.tokenizer
    tokens = tokenizer.split(text)[:max_steps]
    if not tokens:
        raise CLIError("inspect: the input has no tokens")
    ids = torch.tensor([[tokenizer.stoi.get(t, 0) for t in tokens]], dtype=torch.long)  # (1, T)
    trace = _inspect(model, ids)
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


def write_series_lens(
    model: Any,
    x: Any,
    series: Any,
    html_path: str | os.PathLike[str],
    *,
    series_name: str = "series",
    png_dir: str | os.PathLike[str] | None = None,
    title: str = "lstmlens: inside the gates",
) -> list[Path]:
    """Write the lens page of a forecaster fed ``x`` (1, T, F), shown under ``series`` (T,).

    With ``png_dir``, also the standard plots. Returns the files written.
    """
    from lstmlens.lens.html import series_page, write_page
    from lstmlens.lens.plots import write_pngs

    trace = _inspect(model, x)
    page = series_page(trace, series, series_name=series_name, title=title)
    written = [write_page(page, html_path)]
    if png_dir is not None:
        written += write_pngs(trace, png_dir)
    return written


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
            val_fraction = float(config.get("val_fraction", 0.1))
            text = corpus[int(len(corpus) * (1.0 - val_fraction)) :]  # the validation part
        else:
            text = model.generate(prompt="", length=args.max_steps, temperature=0.8, seed=0)
    if not text:
        raise CLIError("inspect: the input text is empty")
    return text


def run(args: argparse.Namespace) -> int:
    """Write the lens page (and PNGs) for ``args.run``; returns the exit status."""
    run_dir = Path(args.run)
    task = _config(run_dir).get("task")
    title = f"lstmlens lens: {run_dir.name}"
    html_path = Path(args.html) if args.html else run_dir / "lens.html"
    if not html_path.parent.is_dir():
        raise CLIError(f"inspect: cannot write {html_path}: no folder {html_path.parent}")
    if task == "language":
        from lstmlens.tasks.language import load_language_model

        model, config = load_language_model(run_dir)
        text = _text_input(args, model, config)
        written = write_text_lens(
            model, text, html_path, png_dir=args.png, max_steps=args.max_steps, title=title
        )
    elif task == "forecast":
        forecast = importlib.import_module("lstmlens.tasks.forecast")
        load = getattr(forecast, "load_forecaster", None)
        lens_input = getattr(forecast, "lens_input", None)
        if load is None or lens_input is None:
            raise CLIError("inspect: forecast runs need lstmlens.tasks.forecast.lens_input")
        model, config = load(run_dir)
        x, series, name = lens_input(model, config, args.input)  # (1, T, F), (T,), str
        x, series = x[:, : args.max_steps], series[: args.max_steps]
        written = write_series_lens(
            model, x, series, html_path, series_name=name, png_dir=args.png, title=title
        )
    else:
        raise CLIError(
            f"inspect: {run_dir} holds a {task!r} run; the lens reads text and forecast runs"
        )
    for path in written:
        print(path)
    return 0
