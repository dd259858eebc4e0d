"""Fidelity: how closely a produced model's outputs follow its reference's on the same inputs.

The one home of the figures that compression (``edgeship compress``), conversion
(``edgeship convert``) and A/B quality (``edgeship ab``) report. Pure functions on arrays,
and :class:`Fidelity`, the typed result of :func:`compare`.

Conventions:

* a *row* is one sample's output flattened (:func:`rows`: ``(N, features)`` float64);
* the *top-1 class* of a sample is the arg-max of its row (:func:`top1`);
* *top-1 agreement* compares each sample's arg-max, so it is defined only for outputs
  shaped like class scores (:func:`is_class_scores`: ``(N, C)`` with ``C >= 2``, size-1
  axes aside); maps (``(N, 1, H, W)``) and sequences (``(N, T, C)``) get cosine and
  max |Δ| only, since an arg-max over a probability map or a row of near-equal values
  flips on noise that changes nothing;
* differences are computed in float64; accuracies and agreements are fractions in [0, 1].

The figures by kind of output (:mod:`edgeship.models.kinds` picks them): top-k agreement
and KL divergence for class scores, relative L2 for boxes and regressions, the IoU of
thresholded masks, nearest-neighbour agreement for embeddings, the landmark error relative
to the landmarks' spread, and the agreement of thresholded decisions for flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeship.core.errors import UsageError
from edgeship.models.estimate import Interval, share_interval

__all__ = [
    "Fidelity",
    "accuracy",
    "class_labels",
    "compare",
    "correct",
    "cosine_rows",
    "cosine_similarity",
    "decision_agreement",
    "decision_threshold",
    "is_class_scores",
    "is_probabilities",
    "kl_divergence",
    "landmark_error",
    "mask_iou",
    "mask_ious",
    "max_abs_diff",
    "mean_abs_diff",
    "nn_agreement",
    "probability_error",
    "relative_l2",
    "rows",
    "spread_ratio",
    "top1",
    "top1_agreement",
    "topk_agreement",
]


def rows(outputs: np.ndarray) -> np.ndarray:
    """Outputs as ``(N, features)`` float64; a 1-D output is one feature per sample."""
    a = np.asarray(outputs)
    if a.ndim == 0:
        raise UsageError("a scalar output has no per-sample rows to compare")
    return a.reshape(a.shape[0], -1).astype(np.float64)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest ``|a - b|`` (0.0 for empty arrays)."""
    if np.asarray(a).size == 0:
        return 0.0
    return float(np.max(np.abs(_f64(a) - _f64(b))))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The mean ``|a - b|`` (0.0 for empty arrays)."""
    if np.asarray(a).size == 0:
        return 0.0
    return float(np.mean(np.abs(_f64(a) - _f64(b))))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Of the flattened tensors; two all-zero tensors are identical (1.0)."""
    x, y = _f64(a).ravel(), _f64(b).ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 and ny == 0.0:
        return 1.0
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.dot(x, y) / (nx * ny))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair of rows; two zero rows count as identical (1)."""
    dot = np.sum(a * b, axis=1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    norms = na * nb
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where((na == 0) & (nb == 0), 1.0, np.clip(cos, -1.0, 1.0))


def top1(outputs: np.ndarray) -> np.ndarray:
    """Each sample's top-1 class: the arg-max of its row."""
    return np.argmax(rows(outputs), axis=1)


def is_class_scores(shape: tuple[int, ...] | list[int]) -> bool:
    """True for ``(N, C)`` with ``C >= 2`` once size-1 axes after the first are dropped
    (``(N, 1, C)``, ``(N, C, 1, 1)`` too): one score per class per sample."""
    if len(shape) < 2:
        return False
    wide = [d for d in shape[1:] if d != 1]
    return len(wide) == 1 and wide[0] >= 2


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of samples whose arg-max agrees; None unless :func:`is_class_scores`.

    ``a`` is the reference: a sample whose arg-max in ``b`` is one of ``a``'s tied
    maxima agrees (either choice is right)."""
    if a.size == 0 or not is_class_scores(a.shape):
        return None
    ra, rb = rows(a), rows(b)
    picked = ra[np.arange(len(ra)), np.argmax(rb, axis=1)]
    return float(np.mean(picked == ra.max(axis=1)))


def topk_agreement(a: np.ndarray, b: np.ndarray, k: int = 5) -> float | None:
    """Share of samples whose reference top-1 class is among ``b``'s top ``k`` (``k``
    capped at one less than the classes, so it never agrees by construction); None
    unless :func:`is_class_scores` with at least 3 classes."""
    if a.size == 0 or not is_class_scores(a.shape):
        return None
    ra, rb = rows(a), rows(b)
    k = min(k, ra.shape[1] - 1)
    if k < 2:
        return None
    best = np.argmax(ra, axis=1)
    top = np.argsort(-rb, axis=1)[:, :k]
    return float(np.mean(np.any(top == best[:, None], axis=1)))


def is_probabilities(a: np.ndarray, atol: float = 1e-3) -> bool:
    """Rows of non-negative values summing to 1 (a softmax), within ``atol``."""
    r = rows(a)
    return bool(r.size and np.all(r >= 0) and np.allclose(r.sum(axis=1), 1.0, atol=atol))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-7) -> float:
    """Mean over samples of KL(p ‖ q) in nats, for probability rows (``q`` clipped at
    ``eps``: a quantized zero where the reference is not would be infinite)."""
    rp, rq = rows(p), np.clip(rows(q), eps, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(rp > 0, rp * np.log(rp / rq), 0.0)
    return float(np.mean(np.sum(terms, axis=1)))


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    """``‖b − a‖ / ‖a‖`` over the whole tensor (0 when both are zero, inf when only the
    reference is)."""
    diff = float(np.linalg.norm(_f64(b) - _f64(a)))
    norm = float(np.linalg.norm(_f64(a)))
    if norm == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / norm


def decision_threshold(reference: np.ndarray) -> float:
    """0.5 for probabilities, 0 for logits (values outside [0, 1]): the same decision,
    since sigmoid(0) = 0.5."""
    x = _f64(reference)
    return 0.5 if x.size and x.min() >= 0.0 and x.max() <= 1.0 else 0.0


def decision_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of values whose decision at :func:`decision_threshold` (the reference
    ``a``'s, for both) agrees; None for empty arrays."""
    if np.asarray(a).size == 0:
        return None
    t = decision_threshold(a)
    return float(np.mean((_f64(a) > t) == (_f64(b) > t)))


def probability_error(a: np.ndarray, b: np.ndarray) -> float:
    """The mean ``|a - b|`` of flags as probabilities (logits, at a
    :func:`decision_threshold` of 0, through the sigmoid first): what a decision at any
    threshold sees, where the base's decisions at 0.5 are all alike (a voice detector's
    probabilities of 0.1-0.4 on noise that its variant pushed to 0.01 still "agree")."""
    if np.asarray(a).size == 0:
        return 0.0
    pa, pb = _f64(a), _f64(b)
    if decision_threshold(a) == 0.0:
        pa, pb = _sigmoid(pa), _sigmoid(pb)
    return float(np.mean(np.abs(pa - pb)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning at -1000


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the masks thresholded at :func:`decision_threshold` (the reference's, for
    both); two empty masks are identical (1.0)."""
    t = decision_threshold(a)
    ma, mb = _f64(a) > t, _f64(b) > t
    union = int(np.count_nonzero(ma | mb))
    return 1.0 if union == 0 else int(np.count_nonzero(ma & mb)) / union


def mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`mask_iou` of each sample (the first axis), at the whole reference's
    threshold: a mask lost on one sample is not hidden by the others' pixels."""
    t = decision_threshold(a)
    ma, mb = (m.reshape(len(m), -1) for m in (_f64(a) > t, _f64(b) > t))
    inter, union = np.sum(ma & mb, axis=1), np.sum(ma | mb, axis=1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def spread_ratio(a: np.ndarray, b: np.ndarray) -> float | None:
    """How much of the reference's spread over the samples ``b`` keeps: the mean over the
    columns of the standard deviation over the samples, ``b``'s over ``a``'s. Class
    probabilities squeezed towards one value for every sample (0.5/0.5) keep their arg-max
    but no threshold on them fires any more. None under 2 samples or where the
    reference's hardly varies."""
    ra, rb = rows(a), rows(b)
    if len(ra) < 2:
        return None
    base = float(np.mean(np.std(ra, axis=0)))
    return float(np.mean(np.std(rb, axis=0))) / base if base > 1e-6 else None


def nn_agreement(a: np.ndarray, b: np.ndarray, k: int = 3) -> float | None:
    """Share of samples whose nearest other sample in ``b`` (by cosine of rows) is among
    its ``k`` nearest in ``a``: whether a search over the embeddings still finds a match
    the reference found (among near-equal neighbours, say faces of one person, the very
    nearest flips on noise that changes no answer). None below ``k + 2`` samples, where
    almost any neighbour would count."""
    ra, rb = rows(a), rows(b)
    if len(ra) < k + 2:
        return None
    near = np.argsort(-_similarities(ra), axis=1)[:, :k]
    found = np.argmax(_similarities(rb), axis=1)
    return float(np.mean(np.any(near == found[:, None], axis=1)))


def _similarities(r: np.ndarray) -> np.ndarray:
    """Cosine of every pair of rows, a row with itself at -inf (never its own neighbour)."""
    norms = np.linalg.norm(r, axis=1, keepdims=True)
    unit = r / np.where(norms > 0, norms, 1.0)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return sim


def landmark_error(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean ``|Δ|`` relative to the landmarks' spread: ``a`` is ``(N, K, D)`` (K points of
    D coordinates); the spread is each sample's standard deviation of its points along
    each axis, averaged over the axes and samples (the size of the hand or face along
    one coordinate, as ``|Δ|`` is one coordinate's: a radius over D axes would be √D
    times larger, and an iris's 0.25-pixel error over its 1.7-pixel spread would pass),
    so the figure means the same in pixels, normalised or world units. None when the
    points do not spread."""
    x = _f64(a).reshape(len(a), -1, np.shape(a)[-1])
    spread = float(np.mean(x.std(axis=1)))
    if spread == 0.0:
        return None
    return mean_abs_diff(a, b) / spread


def class_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """Labels as class indices ``(n,)``; one-hot rows become their arg-max."""
    a = np.asarray(labels)
    if a.ndim == 2 and a.shape[1] > 1:
        a = np.argmax(a, axis=1)
    a = a.reshape(-1)
    if a.shape[0] != n:
        raise UsageError(f"the data set has {a.shape[0]} labels but the model gave {n} outputs")
    if a.dtype.kind not in "iub":
        raise UsageError(f"labels must be class indices or one-hot rows, got dtype {a.dtype}")
    return a.astype(np.int64)


def correct(outputs: np.ndarray, labels: np.ndarray) -> int:
    """How many samples' top-1 class is their label."""
    predicted = top1(outputs)
    return int(np.count_nonzero(predicted == class_labels(labels, predicted.shape[0])))


def accuracy(outputs: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy on ``labels`` (class indices or one-hot); None without labels."""
    if labels is None:
        return None
    n = int(np.asarray(outputs).shape[0])
    return correct(outputs, labels) / n if n else None


@dataclass
class Fidelity:
    """A produced model against its reference on the same inputs (first output of each).

    ``top1_agreement`` is None for outputs that are not class scores; ``accuracy`` and
    ``base_accuracy`` (the reference's) only with labels; ``cosine`` of the flattened
    outputs (None in reports written before it was recorded). Each share is of the
    ``samples``: its Wilson interval at 95 % is ``*_ci`` (in the JSON too).
    """

    samples: int
    top1_agreement: float | None
    max_abs_diff: float
    mean_abs_diff: float
    accuracy: float | None = None
    base_accuracy: float | None = None
    cosine: float | None = None

    @property
    def accuracy_drop_pt(self) -> float | None:
        """``base_accuracy - accuracy`` in percentage points."""
        if self.accuracy is None or self.base_accuracy is None:
            return None
        return 100.0 * (self.base_accuracy - self.accuracy)

    @property
    def top1_agreement_ci(self) -> Interval | None:
        return share_interval(self.top1_agreement, self.samples)

    @property
    def accuracy_ci(self) -> Interval | None:
        return share_interval(self.accuracy, self.samples)

    @property
    def base_accuracy_ci(self) -> Interval | None:
        return share_interval(self.base_accuracy, self.samples)

    def to_dict(self) -> dict[str, Any]:
        drop = self.accuracy_drop_pt
        intervals = {
            name: None if ci is None else asdict(ci)
            for name, ci in (
                ("top1_agreement_ci", self.top1_agreement_ci),
                ("accuracy_ci", self.accuracy_ci),
                ("base_accuracy_ci", self.base_accuracy_ci),
            )
        }
        return {
            **asdict(self),
            **intervals,
            "accuracy_drop_pt": None if drop is None else round(drop, 4),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fidelity:
        return cls(
            samples=int(data["samples"]),
            top1_agreement=_opt_float(data.get("top1_agreement")),
            max_abs_diff=float(data["max_abs_diff"]),
            mean_abs_diff=float(data["mean_abs_diff"]),
            accuracy=_opt_float(data.get("accuracy")),
            base_accuracy=_opt_float(data.get("base_accuracy")),
            cosine=_opt_float(data.get("cosine")),
        )


def compare(
    reference: np.ndarray, produced: np.ndarray, labels: np.ndarray | None = None
) -> Fidelity:
    """Every figure of ``produced`` against ``reference`` (first axis: samples)."""
    ref, got = np.asarray(reference), np.asarray(produced)
    if ref.shape != got.shape:
        raise UsageError(f"outputs of shape {list(got.shape)} and {list(ref.shape)} differ")
    return Fidelity(
        samples=int(ref.shape[0]) if ref.ndim else 1,
        top1_agreement=top1_agreement(ref, got),
        max_abs_diff=max_abs_diff(ref, got),
        mean_abs_diff=mean_abs_diff(ref, got),
        accuracy=accuracy(got, labels),
        base_accuracy=accuracy(ref, labels),
        cosine=cosine_similarity(ref, got),
    )


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
