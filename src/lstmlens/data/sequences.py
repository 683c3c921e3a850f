"""Labelled sequences for classification: read from CSV, checked, split, batched.

Two kinds of input:

* **numeric**, a long-format CSV with one row per (sequence, time step)::

      id,time,f1,f2,label          sequence "a": 3 steps, sequence "b": 2 steps
      a,0,0.1,1.0,up
      a,1,0.2,0.9,up
      a,2,0.3,0.8,up
      b,0,0.5,0.1,down
      b,1,0.4,0.2,down

  rows are grouped by ``id`` and ordered by ``time`` (numbers, or dates/times); each sequence is
  a float32 tensor ``(L_i, F)``; its label must be the same on all its rows.
* **text**, a CSV with one row per document: a text column and a label column; each text becomes
  a tensor of token ids ``(L_i,)`` (see :mod:`lstmlens.data.text`).

Every problem with the input is a ``ValueError`` that names the file and says what was expected
and what came: a missing column, a value that is not a number, a NaN, an empty text, a label
that differs within a sequence, a label column with fewer than two classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

__all__ = [
    "LabelledSequences",
    "encode_labels",
    "pad_batch",
    "read_csv",
    "read_numeric_sequences",
    "read_texts",
    "stratified_split",
]


@dataclass
class LabelledSequences:
    """Sequences and their classes.

    Attributes:
        sequences: ``N`` tensors, ``(L_i, F)`` float32 (numeric) or ``(L_i,)`` int64 (token ids).
        labels: ``(N,)`` int64 class indices into ``classes``, or None when unlabelled.
        ids: ``N`` sequence ids (numeric: the ``id`` column's values; text: the row number).
        classes: class names (strings), in index order.
    """

    sequences: list[Tensor]
    labels: Tensor | None
    ids: list[str]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, index: list[int] | Tensor) -> LabelledSequences:
        """The sequences at ``index``, in that order."""
        index = [int(i) for i in index]
        labels = None if self.labels is None else self.labels[index]
        return LabelledSequences(
            [self.sequences[i] for i in index], labels, [self.ids[i] for i in index], self.classes
        )


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV as a DataFrame; a missing, empty or unparsable file is a ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({' '.join(str(e).split())})") from None
    if frame.empty:
        raise ValueError(f"{path}: the CSV has a header but no rows")
    return frame


def _need_columns(frame: pd.DataFrame, path: Path, **named: str | None) -> None:
    for option, column in named.items():
        if column is not None and column not in frame.columns:
            have = ", ".join(map(str, frame.columns))
            raise ValueError(f"{path}: no column {column!r} (--{option}); the columns are {have}")


def encode_labels(
    values: pd.Series, path: Path, column: str, classes: list[str] | None = None
) -> tuple[Tensor, list[str]]:
    """Label values -> ``(class indices (N,), class names)``.

    With ``classes`` given (prediction), every label must be one of them; otherwise the classes
    are the sorted distinct labels and there must be at least two.
    """
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(f"{path}: label column {column!r} is empty at data row {row + 1}")
    text = values.astype(str)
    if classes is None:
        classes = sorted(text.unique(), key=_natural)
        if len(classes) < 2:
            raise ValueError(
                f"{path}: label column {column!r} has one class ({classes[0]!r}); "
                "classification needs at least two"
            )
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        raise ValueError(
            f"{path}: label {unknown[0]!r} in column {column!r} is not one of the model's "
            f"classes {classes}"
        )
    return torch.tensor([index[v] for v in text], dtype=torch.long), list(classes)


def _natural(label: str) -> tuple:
    """Sort numbers by value ("2" before "10"), then everything else by text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _time_keys(values: pd.Series, path: Path, column: str) -> pd.Series:
    """The time column as something that sorts in time order: numbers, else dates."""
    numbers = pd.to_numeric(values, errors="coerce")
    if not numbers.isna().any():
        return numbers
    dates = pd.to_datetime(values, errors="coerce", format="mixed")
    if not dates.isna().any():
        return dates
    bad = values[numbers.isna() & dates.isna()].iloc[0]
    raise ValueError(f"{path}: time column {column!r} holds {bad!r}, neither a number nor a date")


def read_numeric_sequences(
    path: str | Path,
    id_column: str,
    time_column: str,
    label_column: str | None,
    features: list[str] | None = None,
    classes: list[str] | None = None,
) -> tuple[LabelledSequences, list[str]]:
    """Read a long-format CSV (module docstring) into sequences ``(L_i, F)``.

    Args:
        path: the CSV file.
        id_column, time_column: which rows form a sequence, and their order.
        label_column: the class of each sequence; None to read unlabelled sequences.
        features: the feature columns; default every other column (all must be numeric).
        classes: the known classes (prediction); default: the labels found.

    Returns:
        ``(data, features)`` with the feature names used, in column order.
    """
    path = Path(path)
    frame = read_csv(path)
    _need_columns(frame, path, id=id_column, time=time_column, label=label_column)
    keys = {id_column, time_column, label_column}
    if features is None:
        features = [c for c in frame.columns if c not in keys]
        if not features:
            raise ValueError(f"{path}: no feature columns besides {sorted(k for k in keys if k)}")
    else:
        for column in features:
            _need_columns(frame, path, features=column)
    for column in features:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{path}: feature column {column!r} holds {frame[column].iloc[row]!r} at data "
                f"row {row + 1}, not a number"
            )
        missing = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"{path}: feature column {column!r} has {int(missing.sum())} NaN/missing/infinite "
                f"value(s), the first at data row {row + 1}; sequences must be complete"
            )
        frame[column] = values
    if frame[id_column].isna().any():
        raise ValueError(f"{path}: id column {id_column!r} has empty values")
    frame["__t"] = _time_keys(frame[time_column], path, time_column)
    frame["__id"] = frame[id_column].astype(str)
    dup = frame.duplicated(["__id", "__t"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(
            f"{path}: sequence {frame['__id'].iloc[row]!r} has two rows at time "
            f"{frame[time_column].iloc[row]!r} (data row {row + 1})"
        )
    frame = frame.sort_values(["__t"], kind="stable")
    groups = frame.groupby("__id", sort=False)
    ids = list(pd.unique(frame.sort_index()["__id"]))  # first-appearance order in the file
    sequences, labels = [], []
    for seq_id in ids:
        rows = groups.get_group(seq_id)
        sequences.append(torch.tensor(rows[features].to_numpy(dtype=np.float32)))  # (L_i, F)
        if label_column is not None:
            distinct = rows[label_column].astype(str).unique()
            if len(distinct) > 1:
                raise ValueError(
                    f"{path}: sequence {seq_id!r} has more than one label in {label_column!r}: "
                    f"{', '.join(map(repr, distinct[:3]))}"
                )
            labels.append(rows[label_column].iloc[0])
    y, names = (None, list(classes or []))
    if label_column is not None:
        y, names = encode_labels(pd.Series(labels), path, label_column, classes)
    return LabelledSequences(sequences, y, ids, names), list(features)


def read_texts(
    path: str | Path,
    text_column: str,
    label_column: str | None,
) -> tuple[list[str], pd.Series | None]:
    """The texts (and raw labels) of a CSV with one document per row; empty texts are refused."""
    path = Path(path)
    frame = read_csv(path)
    _need_columns(frame, path, text=text_column, label=label_column)
    texts = frame[text_column]
    empty = texts.isna() | (texts.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise ValueError(f"{path}: text column {text_column!r} is empty at data row {row + 1}")
    labels = None if label_column is None else frame[label_column]
    return texts.astype(str).tolist(), labels


def stratified_split(
    labels: Tensor,
    fractions: tuple[float, float],
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    """Shuffle each class and cut it into train / validation / test by ``fractions`` (val, test).

    Each class gives ``round(n_c * f)`` sequences to validation and test, but keeps at least one
    for training. Raises ``ValueError`` when validation or test would be empty.
    """
    g = torch.Generator().manual_seed(seed)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for c in labels.unique().tolist():
        of_c = torch.nonzero(labels == c).flatten()
        members = of_c[torch.randperm(len(of_c), generator=g)].tolist()
        n = len(members)
        n_val = min(round(n * fractions[0]), max(n - 1, 0))
        n_test = min(round(n * fractions[1]), max(n - 1 - n_val, 0))
        val += members[:n_val]
        test += members[n_val : n_val + n_test]
        train += members[n_val + n_test :]
    if not val or not test:
        raise ValueError(
            f"stratified_split: {len(labels)} sequences leave no validation or test sequence "
            f"with fractions {fractions}; give more data or larger fractions"
        )
    return sorted(train), sorted(val), sorted(test)


def pad_batch(sequences: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Sequences of unequal length -> ``(padded (B, L_max, ...), lengths (B,))``, zero-padded."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    if bool((lengths == 0).any()):
        raise ValueError("pad_batch: a sequence has no steps")
    return pad_sequence(sequences, batch_first=True), lengths  # (B, L_max, F) or (B, L_max)
