"""``lstmlens text``: train a character or word model, generate text, show the likely next tokens.

    lstmlens text train [CORPUS.txt] [--level char|word] [--out runs/text] ...
    lstmlens text generate RUN [--prompt TEXT] [--length 300] [--temperature 0.8]
                           [--top-k K] [--top-p P] [--seed S]
    lstmlens text next RUN "to be or not to" [--top 5]

With no CORPUS, ``train`` uses the standard library's ``pydoc_data`` help text. The
last ``--val-fraction`` (10%) of the tokens is the validation split. The run folder
gets ``config.json`` + ``model.safetensors`` (best epoch), ``metrics.json``,
``metrics.jsonl``, ``loss.png``, ``train.log``, the training checkpoint and ``lens.html``
(the gates over validation text; ``--no-lens`` skips it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from .common import (
    EXIT_INTERRUPTED,
    CLIError,
    add_train_args,
    prepare_run_dir,
    reporter_from_args,
    run_spec,
    train_config_from_args,
)

__all__ = ["register", "train", "generate", "next_tokens"]

DEFAULT_CORPUS = "pydoc_data"  # the name recorded in config.json when no file is given
DEFAULT_WORD_VOCAB = 10000  # --max-vocab of word models when not given


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``text train|generate|next`` to the ``lstmlens`` parser."""
    text = subparsers.add_parser(
        "text", help="language models: train, generate, next tokens", description=__doc__
    )
    actions = text.add_subparsers(dest="action", metavar="ACTION")

    p = actions.add_parser("train", help="train a character or word model on a text file")
    p.add_argument("corpus", nargs="?", metavar="CORPUS", help="UTF-8 text file (pydoc_data)")
    p.add_argument("--level", choices=("char", "word"), default="char", help="tokens (char)")
    p.add_argument("--lower", action="store_true", help="lower-case the text")
    p.add_argument("--max-vocab", type=int, help="vocabulary cap, <unk> included (word: 10000)")
    p.add_argument("--min-count", type=int, default=1, help="rarer tokens become <unk> (1)")
    p.add_argument("--embed", type=int, default=64, help="embedding size (64)")
    p.add_argument("--proj-size", type=int, default=0, help="LSTM projection size (0: none)")
    p.add_argument("--tie-weights", action="store_true", help="decoder shares the embedding")
    p.add_argument("--seq-len", type=int, default=100, help="BPTT truncation length (100)")
    p.add_argument("--batch-size", type=int, default=32, help="parallel streams (32)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share (0.1)")
    p.add_argument("--out", default="runs/text", help="run folder (runs/text)")
    p.add_argument("--no-lens", action="store_true", help="skip RUN/lens.html (the gates)")
    add_train_args(p)
    p.set_defaults(func=train, hidden=256, epochs=10, lr=2e-3, dropout=0.1)

    g = actions.add_parser("generate", help="write text with a trained model (streams to stdout)")
    g.add_argument("run", metavar="RUN", help="run folder of `text train`")
    g.add_argument("--prompt", default="", help="text to start from (a newline)")
    g.add_argument("--length", type=int, default=300, help="tokens to write (300)")
    g.add_argument("--temperature", type=float, default=0.8, help="softmax temperature (0.8)")
    g.add_argument("--top-k", type=int, help="sample among the K most likely tokens only")
    g.add_argument("--top-p", type=float, help="sample from the smallest set of mass >= P")
    g.add_argument("--seed", type=int, help="random seed, for a repeatable text")
    g.set_defaults(func=generate)

    n = actions.add_parser("next", help="the most likely next tokens after a prompt")
    n.add_argument("run", metavar="RUN", help="run folder of `text train`")
    n.add_argument("prompt", metavar="PROMPT", help="the text so far")
    n.add_argument("--top", type=int, default=5, help="how many tokens to show (5)")
    n.set_defaults(func=next_tokens)
    return text


# ------------------------------------------------------------------------ checks


def _positive(value: float | None, option: str, where: str, integer: bool = True) -> None:
    if value is not None and not value > 0:
        kind = "a positive integer" if integer else "a positive number"
        raise CLIError(f"{where}: {option} must be {kind}, got {value}")


def _load_run(run: str, where: str) -> tuple[Any, dict]:
    """The language model of run folder ``run``; another task's folder is refused."""
    from lstmlens.train.checkpoint import read_json

    from ..tasks.language import TASK, load_language_model

    path = Path(run)
    if not (path / "config.json").is_file():
        raise CLIError(f"{where}: {path} is not a run folder (no config.json)")
    task = read_json(path / "config.json").get("task")
    if task != TASK:
        raise CLIError(f"{where}: {path} holds a {task!r} run, not a text model (task 'language')")
    return load_language_model(path)


# ------------------------------------------------------------------------- train


def _corpus(args: argparse.Namespace) -> tuple[str, str]:
    """``(text, name)`` of the training corpus: the file given or the pydoc default."""
    from lstmlens.data.text import read_corpus

    if args.corpus is None:
        from lstmlens.data.datasets import load_pydoc_text

        return load_pydoc_text(), DEFAULT_CORPUS
    return read_corpus(args.corpus), str(Path(args.corpus).resolve())


def _build(args: argparse.Namespace, text: str) -> Any:
    """A fresh model (and its tokeniser) from the command-line options."""
    from lstmlens.data.text import build_tokenizer

    from ..tasks.language import LanguageModel

    max_vocab = args.max_vocab
    if max_vocab is None and args.level == "word":
        max_vocab = DEFAULT_WORD_VOCAB
    tokenizer = build_tokenizer(text, args.level, max_vocab, args.min_count, args.lower)
    return LanguageModel(
        tokenizer,
        embed_size=args.embed,
        hidden_size=args.hidden,
        num_layers=args.layers,
        dropout=args.dropout,
        variant=args.variant,
        proj_size=args.proj_size,
        tie_weights=args.tie_weights,
    )


def train(args: argparse.Namespace) -> int:
    """``text train``: every input is checked before the run folder is touched."""
    import torch

    from lstmlens.data.text import split_ids
    from lstmlens.train import Trainer, save_json_atomic, seed_everything
    from lstmlens.train.checkpoint import read_json

    from ..tasks.language import LanguageTask, build_language_model, save_language_model

    where = "text train"
    for option in ("seq_len", "batch_size", "embed", "min_count"):
        _positive(getattr(args, option), "--" + option.replace("_", "-"), where)
    _positive(args.max_vocab, "--max-vocab", where)
    if args.proj_size < 0:
        raise CLIError(f"{where}: --proj-size must be 0 or positive, got {args.proj_size}")
    if not 0 < args.val_fraction < 1:
        raise CLIError(f"{where}: --val-fraction must be in (0, 1), got {args.val_fraction}")
    config = train_config_from_args(args)
    text, corpus_name = _corpus(args)
    seed_everything(args.seed)
    if args.resume and (Path(args.out) / "config.json").is_file():
        model = build_language_model(read_json(Path(args.out) / "config.json"))
    else:
        model = _build(args, text)
    ids = torch.tensor(model.tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = split_ids(ids, args.val_fraction)
    try:
        task = LanguageTask(model, train_ids, val_ids, args.batch_size, args.seq_len)
    except ValueError as e:
        raise CLIError(f"{where}: the corpus is too short ({len(ids)} tokens): {e}") from None

    options = run_spec(args, files=("corpus",))  # what --resume must match
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume, spec=options)
    extra = {
        "corpus": corpus_name,
        "val_fraction": args.val_fraction,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "train": dataclasses.asdict(config),
    }
    if not args.resume:
        save_language_model(run_dir, model, extra)  # loadable from the start
    reporter = reporter_from_args(args, run_dir)
    level = model.tokenizer.level
    reporter.message(
        f"text train: {len(ids)} {level} tokens ({len(train_ids)} train, {len(val_ids)} val), "
        f"vocabulary {len(model.tokenizer)}, {sum(p.numel() for p in model.parameters())} weights"
    )
    result = Trainer(model, task, config, run_dir, reporter, spec=options).fit(resume=args.resume)
    best = next((r for r in result.history if r["epoch"] == result.best_epoch), None)
    save_language_model(run_dir, model, {**extra, "best_epoch": result.best_epoch})
    summary = {
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "best_val_ppl": best["val_ppl"] if best else math.inf,
        "stopped": result.stopped,
        "seconds": result.seconds,
        "tokens": {"train": len(train_ids), "val": len(val_ids), "level": level},
        "history": result.history,
    }
    if best and "val_bpc" in best:
        summary["best_val_bpc"] = best["val_bpc"]
    save_json_atomic(run_dir / "metrics.json", summary)
    if result.history:
        _plot_losses(result.history, run_dir / "loss.png", level)
    if best is None:
        print(f"no epoch completed; nothing trained in {run_dir}")
    else:
        bpc = f", {best['val_bpc']:.3f} bits/char" if "val_bpc" in best else ""
        print(
            f"best val_loss {best['val_loss']:.4f} nats/{level} (perplexity "
            f"{best['val_ppl']:.2f}{bpc}) at epoch {result.best_epoch}; model in {run_dir}"
        )
    if not args.no_lens and result.stopped != "interrupted":
        from .inspect import text_run_lens

        if (lens := text_run_lens(model, text, args.val_fraction, run_dir)) is not None:
            print(f"lens page (the gates over validation text): {lens}")
    return EXIT_INTERRUPTED if result.stopped == "interrupted" else 0


def _plot_losses(history: list[dict], path: Path, level: str) -> None:
    """Training and validation loss per epoch, written atomically as PNG."""
    from matplotlib.figure import Figure

    from lstmlens.train.checkpoint import write_atomic

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"cross-entropy (nats/{level})")
    ax.grid(alpha=0.3)
    ax.legend()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


# ----------------------------------------------------------------------- generate


def generate(args: argparse.Namespace) -> int:
    """``text generate``: the prompt, then the continuation as it is drawn."""
    where = "text generate"
    _positive(args.length, "--length", where)
    _positive(args.temperature, "--temperature", where, integer=False)
    _positive(args.top_k, "--top-k", where)
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise CLIError(f"{where}: --top-p must be in (0, 1], got {args.top_p}")
    model, _ = _load_run(args.run, where)
    pieces = model.stream(
        args.prompt, args.length, args.temperature, args.top_k, args.top_p, args.seed
    )
    out = sys.stdout
    out.write(args.prompt)
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")
    out.flush()
    return 0


def next_tokens(args: argparse.Namespace) -> int:
    """``text next``: one line per token, most likely first: rank, probability, token."""
    _positive(args.top, "--top", "text next")
    model, _ = _load_run(args.run, "text next")
    for rank, (token, p) in enumerate(model.next_tokens(args.prompt, args.top), start=1):
        print(f"{rank:>3}  {p:.4f}  {token!r}")
    return 0
