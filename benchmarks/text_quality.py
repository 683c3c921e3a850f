"""Tiny Shakespeare, character level: the best validation loss reached within a wall-clock budget.

    python benchmarks/text_quality.py [--minutes 15] [--out runs/text_quality]

Data: ``../shared/data/tinyshakespeare.txt`` (karpathy/char-rnn), split as nanoGPT does:
the first 90% of the characters for training, the last 10% for validation. The model is
``lstmlens.tasks.language.LanguageModel`` (embedding -> lstmlens.LSTM -> dropout ->
decoder) trained by ``lstmlens.train.Trainer`` with stateful truncated BPTT.

The clock starts before a short calibration (a few training steps on a copy of the
model, to size the epochs) and covers everything after it: an "epoch" here is a fixed
number of segments (about ``--eval-seconds`` of training) followed by a validation on
the *whole* validation split, and the learning rate follows a cosine over the number of
such epochs that fit in the budget. Reported: the best validation loss (nats/char) among
the validations that finished within the budget, the loss curve (table + PNG), the time,
the training throughput, and a 500-character sample from the best model.

Reference points (DESIGN / shared data README): nanoGPT's small CPU configuration about
1.88 nats/char; its 6-layer transformer on a GPU 1.4697. Target here: <= 1.55.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch

from lstmlens.data.text import TokenStreams, build_tokenizer, read_corpus, split_ids
from lstmlens.tasks.language import LanguageModel, LanguageTask, evaluate_loss
from lstmlens.train import NullReporter, TrainConfig, Trainer, seed_everything

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "tinyshakespeare.txt"
TARGET = 1.55  # nats/char


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget (15)")
    p.add_argument("--data", type=Path, default=DATA, help="the Tiny Shakespeare text file")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "text_quality")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--variant", default="vanilla")
    p.add_argument("--forget-bias", type=float, default=0.0, help="added to the forget bias")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--eval-seconds", type=float, default=60.0, help="training between validations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (torch's default)")
    return p.parse_args(argv)


class ClockReporter(NullReporter):
    """Prints one line per epoch and stamps each record with the budget clock."""

    def __init__(self, t0: float, tokens_per_epoch: int) -> None:
        super().__init__()
        self.t0, self.tokens_per_epoch, self.stamps = t0, tokens_per_epoch, []

    def epoch_end(self, metrics) -> None:
        minutes = (time.monotonic() - self.t0) / 60
        self.stamps.append(minutes)
        print(
            f"  epoch {metrics['epoch']:>3}  {minutes:6.2f} min  train {metrics['train_loss']:.4f}"
            f"  val {metrics['val_loss']:.4f}  lr {metrics['lr']:.2e}",
            flush=True,
        )


def calibrate(model: LanguageModel, task: LanguageTask, config: TrainConfig, steps: int = 6):
    """Seconds per training segment and per validation, measured on a throwaway copy."""
    probe = copy.deepcopy(model).train()
    opt = torch.optim.Adam(probe.parameters(), lr=config.lr)
    probe_task = copy.copy(task)
    probe_task.state, probe_task._cursor = None, None
    segments = probe_task.train_streams.segments(0)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=config.precision == "bf16"):
            loss = probe_task.training_loss(probe, next(segments))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    step = sorted(times[1:])[len(times[1:]) // 2]  # median, without the first (warm-up) step
    val = task.val_streams
    few = TokenStreams(val.data[:, : 3 * val.seq_len + 1].reshape(-1), val.batch_size, val.seq_len)
    t = time.perf_counter()
    with torch.autocast("cpu", torch.bfloat16, enabled=config.precision == "bf16"):
        evaluate_loss(probe, few)
    val_seconds = (time.perf_counter() - t) / len(few) * len(val)
    return step, val_seconds


def plot(history: list[dict], stamps: list[float], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(stamps, [r["train_loss"] for r in history], "o-", ms=3, label="train (epoch mean)")
    ax.plot(stamps, [r["val_loss"] for r in history], "o-", ms=3, label="validation")
    ax.axhline(TARGET, color="gray", ls="--", lw=1, label=f"target {TARGET}")
    ax.set_xlabel("wall-clock minutes")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title("Tiny Shakespeare, char-level LSTM (lstmlens)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not args.data.is_file():
        print(f"text_quality: {args.data} not found (../shared/data is needed)", file=sys.stderr)
        return 2
    text = read_corpus(args.data)
    tok = build_tokenizer(text, "char")
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    train_ids, val_ids = split_ids(ids, 0.1)  # nanoGPT: first 90% / last 10%
    seed_everything(args.seed)
    model = LanguageModel(
        tok,
        embed_size=args.embed,
        hidden_size=args.hidden,
        num_layers=args.layers,
        dropout=args.dropout,
        variant=args.variant,
        forget_bias=args.forget_bias,
    )
    config = TrainConfig(
        epochs=1,
        lr=args.lr,
        schedule="cosine",
        clip_norm=args.clip,
        seed=args.seed,
        precision=args.precision,
    )
    budget = 60 * args.minutes
    t0 = time.monotonic()
    probe_task = LanguageTask(model, train_ids, val_ids, args.batch_size, args.seq_len)
    step, val_seconds = calibrate(model, probe_task, config)
    segments = max(1, round(args.eval_seconds / step))
    epoch_seconds = segments * step + val_seconds
    left = budget - (time.monotonic() - t0)
    config.epochs = max(1, int(left // epoch_seconds))
    config.max_minutes = max(left - 0.5 * epoch_seconds, 1.0) / 60  # the last epoch ends ~on time
    task = LanguageTask(
        model, train_ids, val_ids, args.batch_size, args.seq_len, segments_per_epoch=segments
    )
    tokens_per_epoch = segments * args.batch_size * args.seq_len
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"Tiny Shakespeare: {len(train_ids)} train / {len(val_ids)} val chars, vocab {len(tok)}; "
        f"model {args.layers}x{args.hidden} LSTM (embed {args.embed}, {n_params} weights); "
        f"B={args.batch_size} T={args.seq_len} lr={args.lr} cosine; calibration: "
        f"{step * 1e3:.0f} ms/segment ({args.batch_size * args.seq_len / step:.0f} tok/s), "
        f"validation {val_seconds:.1f} s; {config.epochs} epochs of {segments} segments",
        flush=True,
    )
    reporter = ClockReporter(t0, tokens_per_epoch)
    result = Trainer(model, task, config, reporter=reporter).fit()
    total = (time.monotonic() - t0) / 60
    history, stamps = result.history, reporter.stamps
    inside = [(r, m) for r, m in zip(history, stamps, strict=True) if m <= args.minutes]
    best, best_min = min(inside, key=lambda rm: rm[0]["val_loss"]) if inside else (None, None)
    train_seconds = sum(r["seconds"] for r in history)
    tok_s = len(history) * tokens_per_epoch / max(train_seconds, 1e-9)

    args.out.mkdir(parents=True, exist_ok=True)
    print("\n| epoch | minutes | chars seen | train loss | val loss | val bpc |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r, m in zip(history, stamps, strict=True):
        seen = r["epoch"] * tokens_per_epoch
        print(
            f"| {r['epoch']} | {m:.2f} | {seen / 1e6:.2f}M | {r['train_loss']:.4f} | "
            f"{r['val_loss']:.4f} | {r['val_bpc']:.3f} |"
        )
    plot(history, stamps, args.out / "loss_curve.png")
    sample = model.generate("\n", length=500, temperature=0.8, seed=args.seed)
    print(f"\nsample (500 chars, temperature 0.8, seed {args.seed}, best model):\n{sample}\n")
    if best is None:
        print(f"no validation finished within {args.minutes:g} minutes")
        verdict = "no result"
    else:
        verdict = "PASS" if best["val_loss"] <= TARGET else "FAIL"
        print(
            f"best val loss within {args.minutes:g} min: {best['val_loss']:.4f} nats/char "
            f"({best['val_bpc']:.3f} bits/char, perplexity {math.exp(best['val_loss']):.2f}) "
            f"at epoch {best['epoch']}, {best_min:.2f} min; target <= {TARGET}: {verdict}"
        )
    print(f"total time {total:.2f} min; training throughput {tok_s:.0f} chars/s")
    summary = {
        "best_val_loss": None if best is None else best["val_loss"],
        "best_epoch": None if best is None else best["epoch"],
        "best_minutes": best_min,
        "target": TARGET,
        "verdict": verdict,
        "budget_minutes": args.minutes,
        "total_minutes": total,
        "train_chars_per_s": tok_s,
        "calibration": {"seconds_per_segment": step, "validation_seconds": val_seconds},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "epochs": [{**r, "minutes": m} for r, m in zip(history, stamps, strict=True)],
        "sample": sample,
        "torch_threads": torch.get_num_threads(),
    }
    (args.out / "text_quality.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"wrote {args.out / 'loss_curve.png'} and {args.out / 'text_quality.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
