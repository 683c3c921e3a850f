"""``lstmlens text``: train a character or word model, generate text, show the likely next tokens.

With no CORPUS, text train uses the standard library's pydoc_data help text. The last
--val-fraction (10%) of the tokens is the validation split. The run folder gets config.json
and model.safetensors (best epoch), metrics.json, metrics.jsonl, loss.png, train.log, the
training checkpoint and lens.html (the gates over validation text; --no-lens skips it).

The work is done by lstmlens.tasks.text_run; this module parses and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..train.distributed import check_share
from .argtypes import BATCH, EMBED, LENGTH, ROWS, SEED, VOCAB, WINDOW, cap_note
from .common import (
    ALL_MODEL_OPTIONS,
    CLIError,
    add_command,
    add_deprecated,
    add_device_arg,
    add_threads_arg,
    add_train_args,
    cpu_device,
    model_kwargs,
    prepare_run_dir,
    print_result,
    reporter_from_args,
    resolve_device,
    run_spec,
    train_config_from_args,
)

__all__ = ["register", "train", "generate", "next_tokens"]

#: The model options a language model takes (it reads left to right: no --bidirectional).
MODEL = tuple(o for o in ALL_MODEL_OPTIONS if o != "bidirectional")
DEFAULTS = {"hidden": 256, "epochs": 10, "lr": 2e-3, "dropout": 0.1}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``text train|generate|next`` to the ``lstmlens`` parser."""
    text = subparsers.add_parser(
        "text",
        help="language models: train, generate, next tokens",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = text.add_subparsers(dest="action", metavar="ACTION")

    p = add_command(
        actions,
        "train",
        "train a character or word model on a text file",
        "example:\n  lstmlens text train shakespeare.txt --level char --out runs/text",
    )
    p.add_argument("corpus", nargs="?", metavar="CORPUS", help="UTF-8 text file (pydoc_data)")
    p.add_argument("--level", choices=("char", "word"), default="char", help="tokens (%(default)s)")
    p.add_argument("--lower", action="store_true", help="lower-case the text")
    p.add_argument("--max-vocab", type=VOCAB, help="vocabulary cap, <unk> included (word: 10000)")
    p.add_argument(
        "--min-count", type=ROWS, default=1, help="rarer tokens become <unk> (%(default)s)"
    )
    p.add_argument(
        "--embed-dim", type=EMBED, default=64, help=cap_note("embedding size (%(default)s)", EMBED)
    )
    add_deprecated(p, "--embed", "--embed-dim", "embed_dim", type=EMBED)
    p.add_argument("--tie-weights", action="store_true", help="decoder shares the embedding")
    p.add_argument(
        "--seq-len", type=WINDOW, default=100, help="BPTT truncation length (%(default)s)"
    )
    p.add_argument("--batch-size", type=BATCH, default=32, help="parallel streams (%(default)s)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share (%(default)s)")
    p.add_argument("--out", default="runs/text", help="run folder (%(default)s)")
    p.add_argument("--no-lens", action="store_true", help="skip RUN/lens.html (the gates)")
    add_train_args(p, MODEL)
    p.set_defaults(func=train, **DEFAULTS)

    g = add_command(
        actions,
        "generate",
        "write text with a trained model (streams to stdout)",
        'example:\n  lstmlens text generate runs/text --prompt "To be" --length 200 --seed 1',
    )
    g.add_argument("run", metavar="RUN", help="run folder of `text train`")
    g.add_argument("--prompt", default="", help="text to start from (a newline)")
    g.add_argument(
        "--length", type=LENGTH, default=300, help=cap_note("tokens to write (%(default)s)", LENGTH)
    )
    g.add_argument(
        "--temperature", type=float, default=0.8, help="softmax temperature (%(default)s)"
    )
    g.add_argument("--top-k", type=VOCAB, help="sample among the K most likely tokens only")
    g.add_argument("--top-p", type=float, help="sample from the smallest set of mass >= P")
    g.add_argument("--seed", type=SEED, help="random seed, for a repeatable text")
    add_device_arg(g)
    add_threads_arg(g)
    g.set_defaults(func=generate)

    n = add_command(
        actions,
        "next",
        "the most likely next tokens after a prompt",
        'example:\n  lstmlens text next runs/text "to be or not to" --top 5',
        "Print the most likely next tokens after a prompt, with their probabilities.",
    )
    n.add_argument("run", metavar="RUN", help="run folder of `text train`")
    n.add_argument("prompt", metavar="PROMPT", help="the text so far")
    n.add_argument("--top", type=VOCAB, default=5, help="how many tokens to show (%(default)s)")
    add_device_arg(n)
    add_threads_arg(n)
    n.set_defaults(func=next_tokens)
    return text


def _positive(value: float | None, option: str, where: str, integer: bool = True) -> None:
    if value is not None and not value > 0:
        kind = "a positive integer" if integer else "a positive number"
        raise CLIError(f"{where}: {option} must be {kind}, got {value}")


def _load_run(run: str, where: str, args: argparse.Namespace) -> Any:
    """The language model of run folder ``run`` on ``--device``; another task's is refused."""
    from ..io import load_run, run_task

    path = Path(run)
    if not (path / "config.json").is_file():
        raise CLIError(f"{where}: {path} is not a run folder (no config.json)")
    task, _ = run_task(path)
    if task != "text":
        raise CLIError(f"{where}: {path} holds a {task!r} run, not a text model (task 'text')")
    return load_run(path)[0].to(resolve_device(args))


def train(args: argparse.Namespace) -> int:
    """``text train``: every input is checked before the run folder is touched."""
    from ..tasks.text_run import TextOptions, prepare_text

    cpu_device(args, "training")
    options = TextOptions(
        level=args.level,
        lower=args.lower,
        max_vocab=args.max_vocab,
        min_count=args.min_count,
        embed_dim=args.embed_dim,
        tie_weights=args.tie_weights,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        val_fraction=args.val_fraction,
        model=model_kwargs(args),
    )
    resume_from = Path(args.out) if args.resume else None
    prepared = prepare_text(args.corpus, options, train_config_from_args(args), resume_from)
    check_share(prepared.task.batch_rows(), "parallel token streams")
    resume_spec = run_spec(args, files=("corpus",))  # what --resume must match
    run_dir = prepare_run_dir(args.out, force=args.force, resume=args.resume, spec=resume_spec)
    reporter = reporter_from_args(args, run_dir)
    result = prepared.fit(run_dir, reporter, args.resume, lens=not args.no_lens, spec=resume_spec)
    return print_result(result)


def generate(args: argparse.Namespace) -> int:
    """``text generate``: the prompt, then the continuation as it is drawn."""
    where = "text generate"
    _positive(args.length, "--length", where)
    _positive(args.temperature, "--temperature", where, integer=False)
    _positive(args.top_k, "--top-k", where)
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise CLIError(f"{where}: --top-p must be in (0, 1], got {args.top_p}")
    model = _load_run(args.run, where, args)
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
    model = _load_run(args.run, "text next", args)
    for rank, (token, p) in enumerate(model.next_tokens(args.prompt, args.top), start=1):
        print(f"{rank:>3}  {p:.4f}  {token!r}")
    return 0
