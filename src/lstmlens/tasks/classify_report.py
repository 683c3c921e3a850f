"""What a saved classifier gives back: predictions as CSV, and its lens page."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from ..data.text import tokenizer_from_dict
from .classify import SequenceClassifier
from .classify_run import digits_sequences, predict

__all__ = ["inspect_classify_run", "predictions_csv"]


def predictions_csv(
    model: SequenceClassifier, config: dict[str, Any], path: str | Path
) -> tuple[str, float | None, int]:
    """:func:`predict` as CSV text (id, predicted, [label], p_CLASS...), with the accuracy
    on the labelled sequences (None without labels) and their number."""
    data, probabilities = predict(model, config, path)
    classes = data.classes
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    labelled = data.labels is not None
    writer.writerow(
        ["id", "predicted"] + (["label"] if labelled else []) + [f"p_{c}" for c in classes]
    )
    best = probabilities.argmax(-1)
    for i, seq_id in enumerate(data.ids):
        row = [seq_id, classes[int(best[i])]]
        if data.labels is not None:
            row.append(classes[int(data.labels[i])])
        writer.writerow(row + [f"{float(p):.6g}" for p in probabilities[i]])
    right = None if data.labels is None else float((best == data.labels).float().mean())
    return buffer.getvalue(), right, len(data)


def inspect_classify_run(
    run_dir: Path,
    model: SequenceClassifier,
    config: dict[str, Any],
    html_path: Path,
    *,
    input: str | None = None,
    png_dir: str | None = None,
    max_steps: int = 1000,
    title: str = "",
) -> list[Path]:
    """The lens page of a classification run fed the first sequence of ``input`` (a CSV read
    as in training; a digits run defaults to the first digit). A text sequence is shown as
    its tokens, a numeric one as its first feature; at most ``max_steps`` steps."""
    from ..lens.html import series_page, text_page, write_page
    from ..lens.plots import write_pngs
    from ..lens.trace import inspect

    data = config.get("data") or {}
    if input is not None:
        seqs, _ = predict(model, config, input)
    elif data.get("kind") == "digits":
        seqs = digits_sequences()
    else:
        raise ValueError(f"inspect: {run_dir} was trained on a CSV; pass --input DATA.csv")
    seq = seqs.sequences[0][:max_steps]  # (L,) token ids or (L, F) values
    x = seq[None] if seq.dtype == torch.long else seq[None].float()  # (1, L) or (1, L, F)
    trace = inspect(model, x, torch.tensor([len(seq)]))
    what = f"sequence {seqs.ids[0]}"
    if data.get("kind") == "text":
        tok = tokenizer_from_dict(data["tokenizer"])
        pieces = list(tok.pieces(tok.token(int(i)) for i in seq))
        page = text_page(trace, pieces, title=f"{title} ({what})")
    else:
        page = series_page(
            trace, seq[:, 0].double().numpy(), series_name=f"{what}, feature 1", title=title
        )
    written = [write_page(page, html_path)]
    if png_dir is not None:
        written += write_pngs(trace, png_dir)
    return written
