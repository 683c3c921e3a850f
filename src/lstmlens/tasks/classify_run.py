"""A classification run from start to end: data -> split -> train -> score -> save; and predict.

A run folder (see ``lstmlens classify train``) holds

* ``config.json``: ``{"model": the SequenceClassifier config, "classes": [...], "data": how to
  read new data (kind, columns, features, tokenizer), "train": the TrainConfig, "options": ...}``;
* ``model.safetensors``: the weights (best validation loss);
* ``metrics.json``: test accuracy, macro-F1, per-class F1, confusion matrix, sizes, history;
* ``confusion.png``: the test confusion matrix;
* the trainer's ``metrics.jsonl``, checkpoint and log.

Data sources: a long-format numeric CSV, a text CSV, or (no file) scikit-learn's bundled 8x8
digits read row by row: 8 steps of 8 pixels (``id``, ``row``, ``px0`` .. ``px7``, ``label``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.sequences import (
    LabelledSequences,
    encode_labels,
    read_csv,
    read_numeric_sequences,
    read_texts,
    stratified_split,
)
from ..data.text import build_tokenizer, tokenizer_from_dict
from ..io import FORMAT_VERSION, save_json_atomic
from ..train import Reporter, TrainConfig, Trainer, load_model, save_model
from ..train.config import seed_everything
from .classify import POOLINGS, ClassifyTask, SequenceClassifier, class_weights, predict_logits
from .classify_metrics import classification_metrics, plot_confusion

__all__ = [
    "ClassifyOptions",
    "DataSpec",
    "data_spec",
    "PreparedRun",
    "load_classifier",
    "predict",
    "prepare_classifier",
    "read_data",
    "train_classifier",
]

DIGITS = {
    "kind": "digits",
    "id": "id",
    "time": "row",
    "label": "label",
    "features": [f"px{i}" for i in range(8)],
}


@dataclass
class DataSpec:
    """Where the sequences come from. ``path=None``: the bundled digits."""

    path: str | None = None
    id: str | None = None  # numeric: sequence id column
    time: str | None = None  # numeric: time-order column
    label: str | None = None  # class column
    features: list[str] | None = None  # numeric: feature columns (default: all others)
    text: str | None = None  # text: the text column
    level: str = "word"  # text: "word" or "char" tokens
    max_vocab: int = 20000  # text: vocabulary size, <unk> included
    max_tokens: int = 400  # text: keep the first this many tokens of each text

    @property
    def kind(self) -> str:
        return "digits" if self.path is None else ("text" if self.text else "numeric")


@dataclass
class ClassifyOptions:
    """The model and the split (training itself is a :class:`TrainConfig`)."""

    hidden_size: int = 64
    num_layers: int = 1
    variant: str = "vanilla"
    dropout: float = 0.0
    bidirectional: bool = False
    pooling: str = "last"  # "last" or "mean"
    embed_dim: int = 64  # text only
    batch_size: int = 32
    class_weights: str = "none"  # "none" or "balanced"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    proj_size: int = 0  # lstmlens.LSTM options
    layer_norm: bool = False
    zoneout: float = 0.0
    recurrent_dropout: float = 0.0
    forget_bias: float = 0.0


def data_spec(
    path: str | None,
    level: str = "word",
    max_vocab: int = 20000,
    max_tokens: int = 400,
    *,
    id: str | None = None,
    time: str | None = None,
    label: str | None = None,
    features: list[str] | tuple[str, ...] | None = None,
    text: str | None = None,
) -> DataSpec:
    """The :class:`DataSpec` of a CSV read with these columns (no path: the digits);
    ``ValueError`` naming the options when they do not fit together."""
    columns = {"id": id, "time": time, "label": label, "features": features, "text": text}
    if path is None:
        given = [f"--{k}" for k, v in columns.items() if v]
        if given:
            raise ValueError(f"{', '.join(given)} given without a DATA.csv file")
        return DataSpec()
    if not label:
        raise ValueError("--label is needed: the column holding each sequence's class")
    if text and (id or time or features):
        raise ValueError(
            "--text (one document per row) cannot be combined with --id/--time/--features"
        )
    if not text and not (id and time):
        raise ValueError("a numeric CSV needs --id and --time (or --text COL for a text CSV)")
    return DataSpec(
        path=path,
        id=id,
        time=time,
        label=label,
        features=None if features is None else list(features),
        text=text,
        level=level,
        max_vocab=max_vocab,
        max_tokens=max_tokens,
    )


def digits_sequences() -> LabelledSequences:
    from ..data.datasets import load_digits_sequences

    x, y = load_digits_sequences()  # (N, 8, 8), (N,)
    return LabelledSequences(
        [torch.from_numpy(s) for s in x],
        torch.from_numpy(y),
        [str(i) for i in range(len(y))],
        [str(c) for c in range(10)],
    )


def _tokens(texts: list[str], data: dict[str, Any]) -> list[torch.Tensor]:
    tok = tokenizer_from_dict(data["tokenizer"])
    return [torch.tensor(tok.encode(t)[: data["max_tokens"]], dtype=torch.long) for t in texts]


def read_data(spec: DataSpec) -> tuple[LabelledSequences, dict[str, Any], list[str] | None]:
    """Labelled sequences, the ``data`` part of the config, and (text) the raw texts."""
    if spec.path is None:  # kind "digits"
        return digits_sequences(), dict(DIGITS), None
    if spec.label is None:
        raise ValueError("classify: --label is needed to train on a CSV")
    if spec.text:  # kind "text"
        texts, raw = read_texts(spec.path, spec.text, spec.label)
        labels, classes = encode_labels(raw, Path(spec.path), spec.label)
        data: dict[str, Any] = {
            "kind": "text",
            "text": spec.text,
            "label": spec.label,
            "level": spec.level,
            "max_vocab": spec.max_vocab,
            "max_tokens": spec.max_tokens,
        }
        seqs = LabelledSequences(
            [torch.empty(0)] * len(texts), labels, [str(i) for i in range(len(texts))], classes
        )
        return seqs, data, texts
    if spec.id is None or spec.time is None:
        raise ValueError("classify: a numeric CSV needs --id and --time (or --text for text)")
    seqs, features = read_numeric_sequences(
        spec.path, spec.id, spec.time, spec.label, spec.features
    )
    data = {
        "kind": "numeric",
        "id": spec.id,
        "time": spec.time,
        "label": spec.label,
        "features": features,
    }
    return seqs, data, None


@dataclass
class PreparedRun:
    """Everything checked and built, nothing trained or written yet (see :func:`prepare_classifier`)."""

    model: SequenceClassifier
    task: ClassifyTask
    test: LabelledSequences
    config: TrainConfig
    saved_config: dict[str, Any]  # what config.json will hold

    def fit(
        self,
        run_dir: str | Path | None = None,
        reporter: Reporter | None = None,
        resume: bool = False,
        spec: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Train, score on the test split, and save into ``run_dir`` (if given); the metrics.

        ``spec`` (the run's options) is recorded in the checkpoint and checked on resume.
        """
        model, classes = self.model, self.saved_config["classes"]
        trainer = Trainer(model, self.task, self.config, run_dir, reporter, spec=spec)
        result = trainer.fit(resume=resume)
        logits = predict_logits(model, self.test)
        assert self.test.labels is not None
        scores = classification_metrics(self.test.labels, logits.argmax(-1), len(classes))
        metrics: dict[str, Any] = {
            "test_accuracy": scores["accuracy"],
            "test_macro_f1": scores["macro_f1"],
            "per_class_f1": dict(zip(classes, scores["per_class_f1"])),
            "confusion": scores["confusion"],
            "classes": classes,
            "sizes": {
                "train": len(self.task.train),
                "val": len(self.task.val),
                "test": len(self.test),
            },
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "stopped": result.stopped,
            "seconds": result.seconds,
        }
        if run_dir is not None:
            save_model(run_dir, model, self.saved_config)
            save_json_atomic(Path(run_dir) / "metrics.json", metrics)
            plot_confusion(
                scores["confusion"],
                classes,
                Path(run_dir) / "confusion.png",
                title=f"test confusion matrix (accuracy {scores['accuracy']:.1%})",
            )
        return metrics


def prepare_classifier(
    spec: DataSpec, options: ClassifyOptions, config: TrainConfig
) -> PreparedRun:
    """Read and check the data, split it (stratified, seeded), tokenise or standardise, build.

    Every problem with the input raises ``ValueError`` here, before anything is written.
    """
    if options.pooling not in POOLINGS:
        raise ValueError(f"classify: pooling must be one of {POOLINGS}, got {options.pooling!r}")
    if options.class_weights not in ("none", "balanced"):
        raise ValueError(
            f"classify: class_weights must be 'none' or 'balanced', got {options.class_weights!r}"
        )
    seqs, data, texts = read_data(spec)
    assert seqs.labels is not None
    train_i, val_i, test_i = stratified_split(
        seqs.labels, (options.val_fraction, options.test_fraction), config.seed
    )
    if texts is not None:  # the vocabulary comes from the training texts only
        tok = build_tokenizer(
            "\n".join(texts[i] for i in train_i),
            level=spec.level,
            max_vocab=spec.max_vocab,
            lower=True,
        )
        data["tokenizer"] = tok.to_dict()
        seqs.sequences = _tokens(texts, data)
        empty = [i for i, s in enumerate(seqs.sequences) if len(s) == 0]
        if empty:
            raise ValueError(f"{spec.path}: text at data row {empty[0] + 1} has no tokens")
    train, val, test = seqs.subset(train_i), seqs.subset(val_i), seqs.subset(test_i)
    C = len(seqs.classes)
    model_config: dict[str, Any] = {
        "num_classes": C,
        "hidden_size": options.hidden_size,
        "num_layers": options.num_layers,
        "variant": options.variant,
        "bidirectional": options.bidirectional,
        "dropout": options.dropout,
        "pooling": options.pooling,
        "proj_size": options.proj_size,
        "layer_norm": options.layer_norm,
        "zoneout": options.zoneout,
        "recurrent_dropout": options.recurrent_dropout,
        "forget_bias": options.forget_bias,
    }
    if texts is not None:
        model_config.update(
            vocab_size=len(data["tokenizer"]["tokens"]) + 1, embed_dim=options.embed_dim
        )
    else:
        steps = torch.cat(train.sequences)  # (sum L_i, F)
        std = steps.std(0, unbiased=False)
        model_config.update(
            input_size=steps.shape[1],
            mean=steps.mean(0).tolist(),
            std=torch.where(std > 0, std, torch.ones_like(std)).tolist(),
        )
    seed_everything(config.seed)
    model = SequenceClassifier(model_config)
    assert train.labels is not None
    weights = class_weights(train.labels, C) if options.class_weights == "balanced" else None
    task = ClassifyTask(train, val, options.batch_size, weights)
    saved = {
        "task": "classify",
        "format_version": FORMAT_VERSION,
        "model": model_config,
        "classes": seqs.classes,
        "data": data,
        "train": dataclasses.asdict(config),
        "options": dataclasses.asdict(options),
    }
    return PreparedRun(model, task, test, config, saved)


def train_classifier(
    spec: DataSpec,
    options: ClassifyOptions,
    config: TrainConfig,
    run_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    resume: bool = False,
) -> tuple[SequenceClassifier, dict[str, Any]]:
    """:func:`prepare_classifier` then :meth:`PreparedRun.fit`: the trained model and its metrics."""
    run = prepare_classifier(spec, options, config)
    return run.model, run.fit(run_dir, reporter, resume)


def load_classifier(run_dir: str | Path) -> tuple[SequenceClassifier, dict[str, Any]]:
    """The model and config of a run folder (``ValueError`` naming the file when unreadable)."""
    return load_model(run_dir, lambda c: SequenceClassifier(_model_config(c, run_dir)))


def _model_config(config: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    if not isinstance(config.get("model"), dict) or "classes" not in config or "data" not in config:
        raise ValueError(f"{Path(run_dir) / 'config.json'}: not a classification run")
    return config["model"]


def predict(
    model: SequenceClassifier,
    config: dict[str, Any],
    path: str | Path,
) -> tuple[LabelledSequences, torch.Tensor]:
    """Read ``path`` as the run's training data was read and return ``(data, probabilities (N, C))``.

    The label column is optional; when present, ``data.labels`` holds the true classes.
    """
    spec = config["data"]
    classes = list(config["classes"])
    label = spec["label"] if spec["label"] in read_csv(path).columns else None
    if spec["kind"] == "text":
        texts, raw = read_texts(path, spec["text"], label)
        labels = None if raw is None else encode_labels(raw, Path(path), spec["label"], classes)[0]
        data = LabelledSequences(
            _tokens(texts, spec), labels, [str(i) for i in range(len(texts))], classes
        )
        empty = [i for i, s in enumerate(data.sequences) if len(s) == 0]
        if empty:
            raise ValueError(f"{path}: text at data row {empty[0] + 1} has no tokens")
    else:
        data, _ = read_numeric_sequences(
            path, spec["id"], spec["time"], label, list(spec["features"]), classes
        )
    probabilities = torch.softmax(predict_logits(model, data), dim=-1)  # (N, C)
    return data, probabilities
