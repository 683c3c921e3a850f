"""Serve an exported lstmlens run with ONNX Runtime and NumPy only: no torch, no lstmlens.

Export a run first, then ask it what the ``lstmlens`` commands answer::

    lstmlens export runs/forecast --output fc.onnx          # also writes fc.json (the sidecar)
    python examples/serve_onnx.py fc.onnx [--steps N]       # = lstmlens forecast predict RUN
    python examples/serve_onnx.py lm.onnx "PROMPT" [--top K]   # = lstmlens text next RUN PROMPT
    python examples/serve_onnx.py cls.onnx DATA.csv          # = lstmlens classify predict RUN DATA.csv

The sidecar JSON next to the ``.onnx`` says what the graph reads and returns and what happens
outside it (tokenising, rolling a forecast forward, naming classes); this script does exactly
that. It forecasts from the run's own data (the last rows stored in the sidecar).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# -- forecast --------------------------------------------------------------------------------
def forecast(model: ort.InferenceSession, side: dict, steps: int | None) -> str:
    """The CSV ``lstmlens forecast predict`` prints: label, point forecast, quantiles."""
    if "history" not in side:
        raise SystemExit("serve_onnx: the sidecar holds no history (the run's data did not load)")
    steps = steps or side["horizon"]
    if steps > len(side["future"]):
        raise SystemExit(f"serve_onnx: at most {len(side['future'])} steps, got {steps}")
    window = np.asarray(side["history"], dtype=np.float64)[None]  # (1, W, F)
    median, blocks, done = side["median_index"], [], 0
    while done < steps:
        (out,) = model.run(None, {"history": window})  # (1, S, Q), the data's units
        out = out[:, : steps - done]
        blocks.append(out)
        done += out.shape[1]
        new = np.repeat(window[:, -1:], out.shape[1], axis=1)  # covariates held
        new[..., 0] = out[..., median]
        window = np.concatenate([window, new], axis=1)[:, -side["window"] :]
    q = np.concatenate(blocks, axis=1)[0]  # (steps, Q)
    levels = side["quantile_levels"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([side["future_label"], "forecast"] + [f"q{v:g}" for v in levels])
    for i in range(steps):
        quant = [f"{v:.6g}" for v in q[i]] if levels else []
        writer.writerow([side["future"][i], f"{q[i, median]:.6g}", *quant])
    return buffer.getvalue()


# -- text ------------------------------------------------------------------------------------
class Tokenizer:
    """The run's tokeniser from the sidecar: id 0 is ``<unk>``."""

    def __init__(self, spec: dict, word_regex: str) -> None:
        self.level, self.lower = spec["level"], bool(spec.get("lower", False))
        self.itos = ["<unk>", *spec["tokens"]]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.word = re.compile(word_regex)

    def encode(self, text: str) -> list[int]:
        text = text.lower() if self.lower else text
        tokens = list(text) if self.level == "char" else self.word.findall(text)
        return [self.stoi.get(t, 0) for t in tokens]


def next_tokens(model: ort.InferenceSession, side: dict, prompt: str, top: int) -> str:
    """The lines ``lstmlens text next`` prints: rank, probability, token."""
    tok = Tokenizer(side["tokenizer"], side["word_regex"])
    ids = tok.encode(prompt)
    if not ids:
        if "\n" not in tok.stoi:
            raise SystemExit("serve_onnx: empty prompt and no newline token to start from")
        ids = [tok.stoi["\n"]]
    elif not any(ids):
        raise SystemExit(f"serve_onnx: the prompt {prompt[:40]!r} has only unknown tokens")
    shapes = side["state_shapes"]
    feeds = {
        "tokens": np.asarray([ids], dtype=np.int64),
        "h0": np.zeros((shapes["h"][0], 1, shapes["h"][1]), np.float32),
        "c0": np.zeros((shapes["c"][0], 1, shapes["c"][1]), np.float32),
    }
    logits = model.run(["logits"], feeds)[0][0, -1].astype(np.float64)  # (V,)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    best = np.argsort(-p, kind="stable")[: min(top, len(p))]
    return "".join(
        f"{rank:>3}  {p[i]:.4f}  {tok.itos[i]!r}\n" for rank, i in enumerate(best, start=1)
    )


# -- classify --------------------------------------------------------------------------------
def _time_key(values: list[str]) -> list:
    try:
        return [float(v) for v in values]
    except ValueError:
        return list(values)  # ISO dates sort as text


def read_sequences(path: Path, side: dict) -> tuple[list[str], list[np.ndarray], list | None]:
    """``(ids, sequences, labels or None)`` read as ``classify predict`` reads them."""
    spec = side["data"]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"serve_onnx: {path} has no rows")
    label = spec["label"] if spec["label"] in rows[0] else None
    if spec["kind"] == "text":
        tok = Tokenizer(spec["tokenizer"], r"<unk>|\w+(?:'\w+)*|[^\w\s]|\n")
        seqs = [np.asarray(tok.encode(r[spec["text"]])[: spec["max_tokens"]]) for r in rows]
        labels = None if label is None else [r[label] for r in rows]
        return [str(i) for i in range(len(rows))], seqs, labels
    keys = _time_key([r[spec["time"]] for r in rows])
    order = sorted(range(len(rows)), key=lambda k: keys[k])  # stable
    ids = list(dict.fromkeys(r[spec["id"]] for r in rows))  # first appearance in the file
    groups: dict[str, list[int]] = {i: [] for i in ids}
    for k in order:
        groups[rows[k][spec["id"]]].append(k)
    features = spec["features"]
    seqs = [np.asarray([[float(rows[k][c]) for c in features] for k in groups[i]]) for i in ids]
    labels = None if label is None else [rows[groups[i][0]][label] for i in ids]
    return ids, seqs, labels


def pad(seqs: list[np.ndarray], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded batch (B, L_max, ...) and the lengths (B,)."""
    lengths = np.asarray([len(q) for q in seqs], dtype=np.int64)
    batch = np.zeros((len(seqs), int(lengths.max()), *seqs[0].shape[1:]), dtype=dtype)
    for k, q in enumerate(seqs):
        batch[k, : len(q)] = q
    return batch, lengths


def classify(model: ort.InferenceSession, side: dict, path: Path, batch: int = 256) -> str:
    """The CSV ``lstmlens classify predict`` prints: id, predicted class, [label], probabilities."""
    ids, seqs, labels = read_sequences(path, side)
    classes = side["classes"]
    name = "tokens" if side["data"]["kind"] == "text" else "x"
    dtype = np.int64 if name == "tokens" else np.float32
    probabilities = []
    for lo in range(0, len(seqs), batch):
        x, lengths = pad(seqs[lo : lo + batch], dtype)
        probabilities.append(model.run(["probabilities"], {name: x, "lengths": lengths})[0])
    p = np.concatenate(probabilities)  # (N, C)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["id", "predicted"] + (["label"] if labels else []) + [f"p_{c}" for c in classes]
    )
    best = [classes[int(k)] for k in p.argmax(-1)]
    for k in range(len(seqs)):
        row = [ids[k], best[k]] + ([labels[k]] if labels else [])
        writer.writerow(row + [f"{float(v):.6g}" for v in p[k]])
    if labels:
        right = sum(a == b for a, b in zip(best, labels)) / len(seqs)
        print(f"accuracy {right:.4f} on {len(seqs)} labelled sequences", file=sys.stderr)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the .onnx file (its sidecar .json beside it)")
    parser.add_argument("query", nargs="?", help="text: the prompt; classify: DATA.csv")
    parser.add_argument("--steps", type=int, default=None, help="forecast: steps (the horizon)")
    parser.add_argument("--top", type=int, default=5, help="text: tokens to list (5)")
    args = parser.parse_args(argv)
    side = json.loads(args.model.with_suffix(".json").read_text(encoding="utf-8"))
    model = session(args.model)
    answers = {
        "forecast": lambda: forecast(model, side, args.steps),
        "language": lambda: next_tokens(model, side, args.query or "", args.top),
        "classify": lambda: classify(
            model, side, Path(args.query or parser.error("need DATA.csv"))
        ),
    }
    if side.get("task") not in answers:
        parser.error(f"unknown task {side.get('task')!r} in the sidecar")
    out = answers[side["task"]]()
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
