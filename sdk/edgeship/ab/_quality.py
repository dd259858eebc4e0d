"""Quality on the device's own outputs: accuracy against labels, agreement with the base.

Every output is judged for what it is (:func:`verdicts`); the figures below are the
first output's, one row per sample (``(N, C)`` logits or scores,
any trailing shape is flattened); top-1 is the arg-max of a row. Labels are class
indices ``(N,)`` or one-hot ``(N, C)``. The figures themselves are
:mod:`edgeship.models.fidelity`'s; this module adds their Wilson intervals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgeship.ab.result import Accuracy, Agreement
from edgeship.core.errors import UsageError
from edgeship.models.estimate import wilson
from edgeship.models.fidelity import class_labels, correct, cosine_rows, max_abs_diff, rows, top1
from edgeship.models.kinds import OutputVerdict, judge_outputs

__all__ = ["accuracy", "agreement", "class_labels", "cosine_rows", "rows", "top1", "verdicts"]


def accuracy(outputs: np.ndarray, labels: np.ndarray, confidence: float = 0.95) -> Accuracy:
    n = int(rows(outputs).shape[0])
    hits = correct(outputs, labels)
    return Accuracy(accuracy=hits / n, ci=wilson(hits, n, confidence), n=n)


def agreement(base: np.ndarray, variant: np.ndarray, confidence: float = 0.95) -> Agreement | None:
    """Top-1 agreement, max |difference| and cosine similarity per sample; None when the
    two outputs cannot be compared element by element (different shapes)."""
    b, v = rows(base), rows(variant)
    if b.shape != v.shape or b.shape[0] == 0:
        return None
    same = int(np.count_nonzero(top1(b) == top1(v)))
    n = int(b.shape[0])
    cos = cosine_rows(b, v)
    return Agreement(
        top1=same / n,
        top1_ci=wilson(same, n, confidence),
        max_abs_diff=max_abs_diff(b, v),
        cosine_mean=float(np.mean(cos)),
        cosine_min=float(np.min(cos)),
        n=n,
    )


def verdicts(
    base: Mapping[str, np.ndarray], variant: Mapping[str, np.ndarray]
) -> list[OutputVerdict]:
    """Every output of ``variant`` against the base's on the same data (by name, else by
    position), each part of a packed head apart, judged by its kind; none when an
    output's shape differs (the variant computes something else)."""
    try:
        return judge_outputs(base, variant)
    except UsageError:
        return []
