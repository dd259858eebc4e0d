"""Quality on the device's own outputs: accuracy against labels, agreement with the base.

Outputs are the model's first output, one row per sample (``(N, C)`` logits or scores,
any trailing shape is flattened); top-1 is the arg-max of a row. Labels are class
indices ``(N,)`` or one-hot ``(N, C)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from .result import Accuracy, Agreement
from .stats import wilson


def rows(outputs: np.ndarray) -> np.ndarray:
    """Outputs as (N, features) float64; a 1-D output is one feature per sample."""
    a = np.asarray(outputs)
    if a.ndim == 0:
        raise UsageError("a scalar output has no per-sample rows to compare")
    return a.reshape(a.shape[0], -1).astype(np.float64)


def top1(outputs: np.ndarray) -> np.ndarray:
    return np.argmax(rows(outputs), axis=1)


def class_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """Labels as class indices; one-hot rows become their arg-max."""
    a = np.asarray(labels)
    if a.ndim == 2 and a.shape[1] > 1:
        a = np.argmax(a, axis=1)
    a = a.reshape(-1)
    if a.shape[0] != n:
        raise UsageError(f"the data set has {a.shape[0]} labels but the model gave {n} outputs")
    if a.dtype.kind not in "iub":
        raise UsageError(f"labels must be class indices or one-hot rows, got dtype {a.dtype}")
    return a.astype(np.int64)


def accuracy(outputs: np.ndarray, labels: np.ndarray, confidence: float = 0.95) -> Accuracy:
    predicted = top1(outputs)
    truth = class_labels(labels, predicted.shape[0])
    correct = int(np.count_nonzero(predicted == truth))
    n = int(predicted.shape[0])
    return Accuracy(accuracy=correct / n, ci=wilson(correct, n, confidence), n=n)


def agreement(base: np.ndarray, variant: np.ndarray, confidence: float = 0.95) -> Agreement | None:
    """Top-1 agreement, max |difference| and cosine similarity per sample; None when the
    two outputs cannot be compared element by element (different shapes)."""
    b, v = rows(base), rows(variant)
    if b.shape != v.shape or b.shape[0] == 0:
        return None
    same = int(np.count_nonzero(np.argmax(b, axis=1) == np.argmax(v, axis=1)))
    n = int(b.shape[0])
    cos = cosine_rows(b, v)
    return Agreement(
        top1=same / n,
        top1_ci=wilson(same, n, confidence),
        max_abs_diff=float(np.max(np.abs(b - v))),
        cosine_mean=float(np.mean(cos)),
        cosine_min=float(np.min(cos)),
        n=n,
    )


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair of rows; two zero rows count as identical (1)."""
    dot = np.sum(a * b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, np.clip(cos, -1.0, 1.0))
