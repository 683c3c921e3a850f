"""A text run from start to end: corpus -> tokens -> train -> save -> lens page; and loading.

``prepare_text(...)`` reads the corpus and builds the model and its streams (``ValueError``
on bad input, before anything is written); :meth:`PreparedText.fit` trains into a run folder
and returns a :class:`TextRunResult` whose ``lines`` are what the command prints. The run
folder holds ``config.json`` (``task: "text"``, ``format_version``, the model arguments, the
tokeniser, the corpus and split), ``model.safetensors`` (best epoch), ``metrics.json``,
``metrics.jsonl``, ``loss.png``, ``train.log``, the training checkpoint and ``lens.html``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..io import read_json, save_json_atomic, save_png
from ..train import Reporter, TrainConfig, Trainer, seed_everything
from .language import (
    LanguageModel,
    LanguageTask,
    build_language_model,
    load_language_model,
    save_language_model,
)

__all__ = [
    "DEFAULT_CORPUS",
    "DEFAULT_WORD_VOCAB",
    "PreparedText",
    "TextOptions",
    "TextRunResult",
    "inspect_text_run",
    "load_text_run",
    "prepare_text",
    "read_text_corpus",
]

DEFAULT_CORPUS = "pydoc_data"  # the name recorded in config.json when no file is given
DEFAULT_WORD_VOCAB = 10000  # max_vocab of word models when not given


@dataclass
class TextOptions:
    """The tokeniser, the model and the streams (training itself is a :class:`TrainConfig`)."""

    level: str = "char"  # "char" or "word" tokens
    lower: bool = False  # lower-case the text
    max_vocab: int | None = None  # vocabulary cap, <unk> included (word: DEFAULT_WORD_VOCAB)
    min_count: int = 1  # rarer tokens become <unk>
    embed_dim: int = 64  # E: embedding size
    tie_weights: bool = False  # the decoder shares the embedding
    seq_len: int = 100  # BPTT truncation length
    batch_size: int = 32  # parallel streams
    val_fraction: float = 0.1  # the last share of the tokens is the validation split
    model: dict[str, Any] = field(default_factory=dict)  # LanguageModel keyword arguments


def read_text_corpus(path: str | None) -> tuple[str, str]:
    """``(text, name)`` of the training corpus: the file given or the pydoc default."""
    from ..data.text import read_corpus

    if path is None:
        from ..data.datasets import load_pydoc_text

        return load_pydoc_text(), DEFAULT_CORPUS
    return read_corpus(path), str(Path(path).resolve())


def load_text_run(run_dir: str | Path) -> tuple[LanguageModel, dict[str, Any]]:
    """The language model and config of a text run folder (``lstmlens.load_run``)."""
    return load_language_model(run_dir)


@dataclass
class TextRunResult:
    """What a run did: its folder, the metrics, the lines to print and any warnings."""

    run_dir: Path
    interrupted: bool
    metrics: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PreparedText:
    """Everything read and built, nothing written (see :func:`prepare_text`)."""

    model: LanguageModel
    task: LanguageTask
    text: str
    extra: dict[str, Any]  # what config.json records besides the model
    sizes: tuple[int, int, int]  # tokens: all, train, validation
    train: TrainConfig

    def fit(
        self,
        run_dir: Path,
        reporter: Reporter,
        resume: bool = False,
        lens: bool = True,
        spec: dict[str, Any] | None = None,
    ) -> TextRunResult:
        """Train, save the best model, metrics and loss plot, and the lens page (``spec``: what
        the command line asked, recorded in the checkpoint; a resume must match it)."""
        from ..lens.pages import text_run_lens

        model, extra = self.model, self.extra
        if not resume:
            save_language_model(run_dir, model, extra)  # loadable from the start
        level = model.tokenizer.level
        total, n_train, n_val = self.sizes
        reporter.message(
            f"text train: {total} {level} tokens ({n_train} train, {n_val} val), "
            f"vocabulary {len(model.tokenizer)}, {sum(p.numel() for p in model.parameters())} weights"
        )
        trainer = Trainer(model, self.task, self.train, run_dir, reporter, spec=spec)
        result = trainer.fit(resume=resume)
        best = next((r for r in result.history if r["epoch"] == result.best_epoch), None)
        save_language_model(run_dir, model, {**extra, "best_epoch": result.best_epoch})
        summary = {
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "best_val_ppl": best["val_ppl"] if best else math.inf,
            "stopped": result.stopped,
            "seconds": result.seconds,
            "tokens": {"train": n_train, "val": n_val, "level": level},
            "history": result.history,
        }
        if best and "val_bpc" in best:
            summary["best_val_bpc"] = best["val_bpc"]
        save_json_atomic(run_dir / "metrics.json", summary)
        if result.history:
            save_png(_loss_figure(result.history, level), run_dir / "loss.png")
        interrupted = result.stopped == "interrupted"
        out = TextRunResult(run_dir, interrupted, summary)
        if best is None:
            out.lines.append(f"no epoch completed; nothing trained in {run_dir}")
        else:
            bpc = f", {best['val_bpc']:.3f} bits/char" if "val_bpc" in best else ""
            out.lines.append(
                f"best val_loss {best['val_loss']:.4f} nats/{level} (perplexity "
                f"{best['val_ppl']:.2f}{bpc}) at epoch {result.best_epoch}; model in {run_dir}"
            )
        if lens and not interrupted:
            page, warning = text_run_lens(model, self.text, extra["val_fraction"], run_dir)
            if page is not None:
                out.lines.append(f"lens page (the gates over validation text): {page}")
            if warning is not None:
                out.warnings.append(warning)
        return out


def prepare_text(
    corpus: str | None,
    options: TextOptions,
    train: TrainConfig,
    resume_from: Path | None = None,
) -> PreparedText:
    """Read the corpus, build the tokeniser and model (or rebuild the one of ``resume_from``'s
    config.json), split the tokens: ``ValueError`` on any bad input."""
    from ..data.text import build_tokenizer, split_ids

    for name in ("seq_len", "batch_size", "embed_dim", "min_count"):
        value = getattr(options, name)
        if not value > 0:
            raise ValueError(
                f"text train: --{name.replace('_', '-')} must be a positive integer, got {value}"
            )
    if options.max_vocab is not None and not options.max_vocab > 0:
        raise ValueError(
            f"text train: --max-vocab must be a positive integer, got {options.max_vocab}"
        )
    if not 0 < options.val_fraction < 1:
        raise ValueError(
            f"text train: --val-fraction must be in (0, 1), got {options.val_fraction}"
        )
    text, corpus_name = read_text_corpus(corpus)
    seed_everything(train.seed)
    if resume_from is not None and (resume_from / "config.json").is_file():
        model = build_language_model(read_json(resume_from / "config.json"))
    else:
        max_vocab = options.max_vocab
        if max_vocab is None and options.level == "word":
            max_vocab = DEFAULT_WORD_VOCAB
        tokenizer = build_tokenizer(
            text, options.level, max_vocab, options.min_count, options.lower
        )
        model = LanguageModel(
            tokenizer,
            embed_size=options.embed_dim,
            tie_weights=options.tie_weights,
            **options.model,
        )
    ids = torch.tensor(model.tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = split_ids(ids, options.val_fraction)
    try:
        task = LanguageTask(model, train_ids, val_ids, options.batch_size, options.seq_len)
    except ValueError as e:
        raise ValueError(f"text train: the corpus is too short ({len(ids)} tokens): {e}") from None
    extra = {
        "corpus": corpus_name,
        "val_fraction": options.val_fraction,
        "batch_size": options.batch_size,
        "seq_len": options.seq_len,
        "train": dataclasses.asdict(train),
    }
    sizes = (len(ids), len(train_ids), len(val_ids))
    return PreparedText(model, task, text, extra, sizes, train)


def _loss_figure(history: list[dict], level: str) -> Any:
    """Training and validation loss per epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"cross-entropy (nats/{level})")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def inspect_text_run(
    run_dir: Path,
    model: LanguageModel,
    config: dict[str, Any],
    html_path: Path,
    *,
    input: str | None = None,
    png_dir: str | None = None,
    max_steps: int = 1000,
    title: str = "",
) -> list[Path]:
    """The lens page of a text run fed ``input`` (a file, or the text itself); else the
    validation part of the recorded corpus (``config["corpus"]``: a path, or the default
    ``pydoc_data``); else text the model writes itself (seed 0)."""
    from ..data.text import read_corpus
    from ..lens.pages import validation_text, write_text_lens

    if input is not None:
        path = Path(input)
        text = read_corpus(path) if path.is_file() else input
    else:
        corpus = config.get("corpus")
        if corpus == DEFAULT_CORPUS:
            from ..data.datasets import load_pydoc_text

            corpus = load_pydoc_text()
        elif isinstance(corpus, str) and Path(corpus).is_file():
            corpus = read_corpus(corpus)
        else:
            corpus = None
        if corpus is not None:
            text = validation_text(corpus, float(config.get("val_fraction", 0.1)))
        else:
            text = model.generate(prompt="", length=max_steps, temperature=0.8, seed=0)
    if not text:
        raise ValueError("inspect: the input text is empty")
    return write_text_lens(
        model, text, html_path, png_dir=png_dir, max_steps=max_steps, title=title
    )
