"""Lens pages of trained task models: a text model over a text, a forecaster over a series,
a long-range race's model over one task sequence.

Each ``write_*_lens`` traces the model, writes the self-contained HTML page (and, with
``png_dir``, the standard PNG plots) and returns the files written. The run modules
(``lstmlens.tasks.*_run``) call :func:`after_training` to leave a ``lens.html`` in every run
folder, and ``lstmlens inspect`` calls the writers directly.

A forecaster reads a window of ``W`` rows for each forecast, so its page is not one trace
of one sequence: :func:`window_trace` traces every window ending in the steps shown and
keeps the gates at each window's last step, the state the forecaster's head reads. The
result is a real :class:`~lstmlens.lens.trace.Trace` of one unbatched sequence of ``N``
steps (``gate(name)`` is ``(N, H)``), so every page and plot reads it like any other.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .trace import Trace, inspect

__all__ = [
    "LENS_CHARS",
    "after_training",
    "forecast_run_lens",
    "text_run_lens",
    "validation_text",
    "window_ends",
    "window_trace",
    "write_sequence_lens",
    "write_series_lens",
    "write_text_lens",
]

#: Characters of validation text the page written by ``text train`` shows.
LENS_CHARS = 1000
#: Windows traced at once for a forecast page (bounds the memory of the recording).
_CHUNK = 512
DEFAULT_TITLE = "lstmlens: inside the gates"


def write_text_lens(
    model: Any,
    text: str,
    html_path: str | os.PathLike[str],
    *,
    png_dir: str | os.PathLike[str] | None = None,
    max_steps: int = 1000,
    title: str = DEFAULT_TITLE,
) -> list[Path]:
    """Write the lens page of a text model fed ``text`` (its first ``max_steps`` tokens).

    ``model`` is a :class:`lstmlens.tasks.language.LanguageModel` (it needs ``tokenizer``
    and ``model(ids (1, T))``). With ``png_dir``, also the standard plots and the text
    coloured by the three most interpretable units. Returns the files written.
    """
    from .html import text_page, write_page
    from .plots import save_png, text_heat_figure, write_pngs
    from .stats import interpretable_units, one_sequence, text_signals

    tokenizer = model.tokenizer
    tokens = tokenizer.split(text)[:max_steps]
    if not tokens:
        raise ValueError("inspect: the input has no tokens")
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
            path = out / f"unit_l{best.layer}_{best.gate}{best.unit}.png"
            written.append(save_png(fig, path, dpi=110))
    return written


def window_trace(forecaster: Any, series: Any, origins: np.ndarray) -> Trace:
    """The gates at the last step of each window ending before ``origins`` (N,), as one
    unbatched trace of N steps: ``gate(name, layer, direction)`` is ``(N, H)``, row n the
    state the forecaster's head reads for the forecast from ``origins[n]``.

    Row n is its own window, so the row before it is not the state its step read: that
    state (``hidden`` and ``cell`` one step earlier in the same window; zero, the initial
    state, for a one-step window or the reverse direction, which starts at the last step)
    is kept in ``trace.before`` for the cell view."""
    pieces: dict[tuple[int, int], dict[str, list[torch.Tensor]]] = {}
    earlier: dict[tuple[int, int], dict[str, list[torch.Tensor]]] = {}
    trace: Trace | None = None
    for chunk in np.array_split(origins, math.ceil(len(origins) / _CHUNK)):
        trace = inspect(forecaster.net, forecaster.inputs(series, chunk))  # x: (n, W, F)
        for layer in range(trace.num_layers):
            for d in range(trace.num_directions):
                for name in trace.gate_names:
                    gate = trace.gate(name, layer, d)  # (n, W, H)
                    last = gate[:, -1]  # (n, H)
                    pieces.setdefault((layer, d), {}).setdefault(name, []).append(last.double())
                    if name in ("hidden", "cell"):
                        read = gate[:, -2] if gate.shape[1] > 1 and d == 0 else 0 * last
                        earlier.setdefault((layer, d), {}).setdefault(name, []).append(
                            read.double()
                        )
    assert trace is not None
    stack = lambda named: {n: torch.cat(parts)[:, None] for n, parts in named.items()}  # noqa: E731
    return Trace(
        kind=trace.kind,
        num_layers=trace.num_layers,
        num_directions=trace.num_directions,
        hidden_size=trace.hidden_size,
        batch_first=False,
        batched=False,
        lengths=None,
        module=trace.module,
        before={key: stack(named) for key, named in earlier.items()},  # (N, 1, H)
        _gates={key: stack(named) for key, named in pieces.items()},  # (N, 1, H)
    )


def window_ends(
    forecaster: Any, series: Any, start: int = 0, stop: int | None = None
) -> tuple[Trace, int]:
    """Trace a forecaster over the steps ``t`` in ``[start, stop)`` of ``series``.

    Step ``t`` is read through the window of the ``W`` rows up to it (``t-W+1 .. t``, the
    origin ``t+1``): the gates recorded at its last step are the memory the model's
    forecast of ``t+1`` is made from. Steps before ``W-1`` have no full window and are
    skipped, so the result starts at ``max(start, W-1)``. Returns ``(trace, first)``: the
    :func:`window_trace` of those steps, and the first step it shows.
    """
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
    return window_trace(forecaster, series, origins), first


def write_series_lens(
    forecaster: Any,
    series: Any,
    html_path: str | os.PathLike[str],
    *,
    start: int = 0,
    stop: int | None = None,
    png_dir: str | os.PathLike[str] | None = None,
    title: str = DEFAULT_TITLE,
) -> list[Path]:
    """Write the lens page of a forecaster over the steps ``[start, stop)`` of ``series``.

    ``forecaster`` is a fitted :class:`lstmlens.tasks.forecast.Forecaster`, ``series`` a
    :class:`lstmlens.data.series.Series` it can read. The page shows the target in its own
    units with, under each step, the gates the model had after reading the window that
    ends there (see :func:`window_ends`). With ``png_dir``, also the standard plots.
    Returns the files written.
    """
    from .html import series_page, write_page
    from .plots import write_pngs

    trace, first = window_ends(forecaster, series, start, stop)
    steps = trace.gate(trace.gate_names[0]).shape[0]
    last = first + steps - 1
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


def write_sequence_lens(
    model: Any,
    inputs: torch.Tensor,
    values: np.ndarray,
    html_path: str | os.PathLike[str],
    *,
    name: str = "input",
    png_dir: str | os.PathLike[str] | None = None,
    title: str = DEFAULT_TITLE,
) -> list[Path]:
    """Write the lens page of ``model`` fed one sequence ``inputs`` (1, T, I), drawn as the
    per-step ``values`` (T,) (e.g. a long-range task's input value or symbol)."""
    from .html import series_page, write_page
    from .plots import write_pngs

    trace = inspect(model, inputs)
    page = series_page(trace, values, series_name=name, title=title)
    written = [write_page(page, html_path)]
    if png_dir is not None:
        written += write_pngs(trace, png_dir)
    return written


def validation_text(corpus: str, val_fraction: float) -> str:
    """The validation part of a corpus: its last ``val_fraction`` of characters."""
    return corpus[int(len(corpus) * (1.0 - val_fraction)) :]


def after_training(write: Callable[[], list[Path]]) -> tuple[Path | None, str | None]:
    """Run ``write()`` (a lens writer) after a run: ``(page, None)``, or ``(None, why)`` when
    it failed; a failed page is a warning, not a failed run."""
    try:
        return write()[0], None
    except (ValueError, OSError) as e:
        return None, f"no lens page for the run: {e}"


def text_run_lens(
    model: Any, corpus: str, val_fraction: float, run_dir: Path
) -> tuple[Path | None, str | None]:
    """``RUN/lens.html`` of a text model just trained: the first :data:`LENS_CHARS`
    characters of the validation part (see :func:`after_training`)."""
    text = validation_text(corpus, val_fraction)[:LENS_CHARS]
    title = f"lstmlens lens: {Path(run_dir).name}"
    return after_training(
        lambda: write_text_lens(model, text, Path(run_dir) / "lens.html", title=title)
    )


def forecast_run_lens(
    forecaster: Any, series: Any, split: Any, run_dir: Path
) -> tuple[Path | None, str | None]:
    """``RUN/lens.html`` of a forecaster just trained, over the test part of its series
    (rows from ``split.val_end``; see :func:`after_training`)."""
    title = f"lstmlens lens: {Path(run_dir).name}"
    return after_training(
        lambda: write_series_lens(
            forecaster, series, Path(run_dir) / "lens.html", start=split.val_end, title=title
        )
    )
