r"""Classification scores: accuracy, macro-F1 and the confusion matrix (numbers and PNG).

With ``M[i, j]`` the number of sequences of true class ``i`` predicted as ``j`` (``C`` classes):

    accuracy  = sum_i M[i, i] / sum_ij M[i, j]
    precision_c = M[c, c] / sum_i M[i, c]      recall_c = M[c, c] / sum_j M[c, j]
    F1_c      = 2 precision_c recall_c / (precision_c + recall_c)   (0 when both are 0)
    macro-F1  = (1/C') sum_c F1_c  over the C' classes that occur in the truth or the predictions
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import save_png

__all__ = ["classification_metrics", "confusion_matrix", "plot_confusion"]


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> np.ndarray:
    """``M (C, C)`` int64: rows are true classes, columns predicted classes."""
    t = np.asarray(truth, dtype=np.int64).ravel()
    p = np.asarray(predicted, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(
            f"confusion_matrix: truth and predictions differ in size: {t.size} vs {p.size}"
        )
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def classification_metrics(
    truth: torch.Tensor, predicted: torch.Tensor, num_classes: int
) -> dict[str, Any]:
    """``{"accuracy", "macro_f1", "per_class_f1", "confusion"}`` (module docstring)."""
    m = confusion_matrix(truth, predicted, num_classes).astype(np.float64)
    total = m.sum()
    if total == 0:
        raise ValueError("classification_metrics: no predictions to score")
    tp = np.diag(m)
    predicted_n, true_n = m.sum(0), m.sum(1)
    precision = np.divide(tp, predicted_n, out=np.zeros_like(tp), where=predicted_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros_like(tp), where=true_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (predicted_n + true_n) > 0
    return {
        "accuracy": float(tp.sum() / total),
        "macro_f1": float(f1[present].mean()),
        "per_class_f1": [float(v) for v in f1],
        "confusion": m.astype(np.int64).tolist(),
    }


def plot_confusion(
    matrix: np.ndarray | list,
    classes: Sequence[str],
    path: str | Path,
    title: str = "confusion matrix",
) -> Path:
    """Draw the confusion matrix (counts in each cell) to a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m = np.asarray(matrix)
    n = len(classes)
    size = max(4.0, 0.5 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    try:
        image = ax.imshow(m, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(n), labels=list(classes), rotation=45 if n > 6 else 0)
        ax.set_yticks(range(n), labels=list(classes))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        if n <= 30:
            high = m.max() if m.size else 0
            for i in range(n):
                for j in range(n):
                    color = "white" if high and m[i, j] > high / 2 else "black"
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", color=color, fontsize=8)
        fig.tight_layout()
        return save_png(fig, path)
    finally:
        plt.close(fig)
