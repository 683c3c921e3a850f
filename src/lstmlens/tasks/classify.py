r"""Sequence classification: an LSTM reads a whole sequence, a linear head names its class.

For a sequence ``x_1 .. x_L`` (numeric features ``(L, F)``, or token ids ``(L,)`` looked up in an
embedding table), the recurrent layers give ``h_1 .. h_L`` (``D * H`` units, ``D = 2`` when
bidirectional) and the sequence is summarised by

* ``pooling="last"``: the final hidden state of the top layer; bidirectional: the forward
  direction's ``h_L`` beside the backward direction's ``h_1`` (each has read the whole sequence);
* ``pooling="mean"``: ``(1/L) sum_t h_t`` over the sequence's own steps only (padding is masked).

``logits = W s + b`` (``C`` classes); the loss is cross-entropy, optionally weighted per class
(``w_c = N / (C N_c)``, "balanced") against imbalance. A batch of unequal lengths goes to the
layer padded, with its ``lengths`` (each sequence ends there, as if packed), so a sequence gets
the same logits in any batch as alone, and ``torch.compile(fullgraph=True)`` takes the model
whole (a ``torch.nn.LSTM`` put in ``rnn`` is fed packed sequences).
Numeric features are standardised with the training set's per-feature mean and deviation, which
travel with the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data.sequences import LabelledSequences, pad_batch
from ..layers import LSTM
from ..recurrent import RecurrentBase
from .classify_metrics import classification_metrics

__all__ = ["POOLINGS", "ClassifyTask", "SequenceClassifier", "class_weights", "predict_logits"]

POOLINGS = ("last", "mean")


class SequenceClassifier(nn.Module):
    """LSTM layers + summary + linear head; built from (and saved as) a JSON-ready ``config``.

    Config keys: ``num_classes``; ``input_size`` (numeric) or ``vocab_size`` and ``embed_dim``
    (text); ``hidden_size``, ``num_layers``, ``variant``, ``bidirectional``, ``dropout``,
    ``pooling`` (``"last"`` or ``"mean"``); ``mean`` / ``std`` (per-feature lists, numeric);
    optionally the :class:`lstmlens.LSTM` options ``proj_size``, ``layer_norm``, ``zoneout``,
    ``recurrent_dropout``, ``forget_bias``.

    ``forward(x, lengths)``: ``x`` is ``(B, L, F)`` float (numeric) or ``(B, L)`` int64 (text),
    zero-padded past ``lengths`` ``(B,)``; returns logits ``(B, num_classes)``.
    """

    mean: Tensor  # buffers (numeric inputs only)
    std: Tensor

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        c = self.config
        if c.get("pooling", "last") not in POOLINGS:
            raise ValueError(
                f"SequenceClassifier: pooling must be one of {POOLINGS}, got {c.get('pooling')!r}"
            )
        self.text = "vocab_size" in c
        if self.text:
            self.embed = nn.Embedding(int(c["vocab_size"]), int(c["embed_dim"]))
            input_size = int(c["embed_dim"])
        else:
            input_size = int(c["input_size"])
            mean = torch.tensor(c.get("mean", [0.0] * input_size), dtype=torch.float32)
            std = torch.tensor(c.get("std", [1.0] * input_size), dtype=torch.float32)
            self.register_buffer("mean", mean, persistent=False)  # (F,), kept in config.json
            self.register_buffer("std", std, persistent=False)
        layers = int(c.get("num_layers", 1))
        self.rnn = LSTM(
            input_size,
            int(c["hidden_size"]),
            num_layers=layers,
            batch_first=True,
            dropout=float(c.get("dropout", 0.0)) if layers > 1 else 0.0,
            bidirectional=bool(c.get("bidirectional", False)),
            variant=c.get("variant", "vanilla"),
            proj_size=int(c.get("proj_size", 0)),
            layer_norm=bool(c.get("layer_norm", False)),
            zoneout=float(c.get("zoneout", 0.0)),
            recurrent_dropout=float(c.get("recurrent_dropout", 0.0)),
            forget_bias=float(c.get("forget_bias", 0.0)),
        )
        directions = 2 if self.rnn.bidirectional else 1
        self.pooling = c.get("pooling", "last")
        features = int(c.get("proj_size", 0)) or int(c["hidden_size"])  # what h holds
        self.head = nn.Linear(directions * features, int(c["num_classes"]))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        x = self.embed(x) if self.text else (x - self.mean) / self.std  # (B, L, E) or (B, L, F)
        if isinstance(self.rnn, RecurrentBase):  # padded + lengths: one graph for the compiler
            padded, (h_n, _) = self.rnn(x, lengths=lengths)  # (B, L, D*H), zeros past L
        else:  # a torch.nn.LSTM put in its place reads packed sequences
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, (h_n, _) = self.rnn(packed)
            padded, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        if self.pooling == "last":
            if self.rnn.bidirectional:
                summary = torch.cat(
                    [h_n[-2], h_n[-1]], dim=-1
                )  # (B, 2H): forward h_L, backward h_1
            else:
                summary = h_n[-1]  # (B, H), original batch order
        else:
            summary = padded.sum(1) / lengths.to(padded.dtype).unsqueeze(1)  # (B, D*H)
        return self.head(summary)


def class_weights(labels: Tensor, num_classes: int) -> Tensor:
    """Balanced class weights ``w_c = N / (C N_c)`` (a class absent from ``labels`` gets 0)."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    weights = torch.where(counts > 0, len(labels) / (num_classes * counts.clamp(min=1)), 0.0)
    return weights.float()


def _batches(
    data: LabelledSequences,
    order: list[int],
    batch_size: int,
) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
    for lo in range(0, len(order), batch_size):
        index = order[lo : lo + batch_size]
        x, lengths = pad_batch([data.sequences[i] for i in index])
        y = None if data.labels is None else data.labels[index]
        yield x, lengths, y


@torch.no_grad()
def predict_logits(
    model: SequenceClassifier, data: LabelledSequences, batch_size: int = 256
) -> Tensor:
    """Logits ``(N, C)`` for every sequence of ``data``, in order, with the model in eval mode."""
    was_training = model.training
    model.eval()
    out = [
        model(x, lengths) for x, lengths, _ in _batches(data, list(range(len(data))), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, int(model.config["num_classes"]))


class ClassifyTask:
    """The trainer's task: shuffled mini-batches of training sequences, scored on validation.

    Args:
        train, val: labelled sequences.
        batch_size: sequences per optimizer step.
        weights: per-class loss weights ``(C,)`` or None.
    """

    def __init__(
        self,
        train: LabelledSequences,
        val: LabelledSequences,
        batch_size: int = 32,
        weights: Tensor | None = None,
    ) -> None:
        if train.labels is None or val.labels is None:
            raise ValueError("ClassifyTask: training and validation sequences need labels")
        if batch_size < 1:
            raise ValueError(f"ClassifyTask: batch_size must be >= 1, got {batch_size}")
        self.train, self.val, self.batch_size, self.weights = train, val, batch_size, weights

    def __len__(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def train_batches(self, epoch: int, generator: torch.Generator):
        order = torch.randperm(len(self.train), generator=generator).tolist()
        return list(_batches(self.train, order, self.batch_size))

    def batch_rows(self) -> int:
        """Rows of a full batch (a distributed run needs at least one per process)."""
        return min(self.batch_size, len(self.train))

    def loss_weight(self, batch: tuple[Tensor, Tensor, Tensor]) -> float:
        """What the weighted mean loss divides by: the batch's summed class weights."""
        y = batch[2]
        return float(len(y) if self.weights is None else self.weights[y].sum())

    def training_loss(self, model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        x, lengths, y = batch
        return F.cross_entropy(model(x, lengths), y, weight=self.weights)

    def validate(self, model: nn.Module) -> dict[str, float]:
        labels = self.val.labels
        assert labels is not None, "ClassifyTask: validation sequences carry labels"
        logits = predict_logits(cast(SequenceClassifier, model), self.val)
        loss = F.cross_entropy(logits, labels, weight=self.weights)
        scores = classification_metrics(labels, logits.argmax(-1), len(self.val.classes))
        return {
            "val_loss": float(loss),
            "val_accuracy": scores["accuracy"],
            "val_macro_f1": scores["macro_f1"],
        }
