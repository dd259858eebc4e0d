"""Detections of a packed (YOLO-style) head, and how far a variant's agree with its base's.

Pure numpy. A packed head's boxes are ``(cx, cy, w, h)`` per anchor in the model's own
units (pixels for YOLOv8), its scores one per class per anchor in [0, 1]. :func:`decode`
keeps anchors whose best score reaches a threshold and runs class-wise non-maximum
suppression. The threshold is per sample (:func:`sample_thresholds`): Ultralytics' 0.25,
or lower where the base detects fewer than :data:`FEWEST` objects at it, so that a sample
the base is unsure of still holds detections to agree on (on photographs where neither
detected anything at 0.25, a pruned YOLOv8n held on nothing that the corpus benchmark's
judge scored AP50 0.585 against its base). :func:`agreement` matches the variant's
detections to the base's (same class, IoU ≥ 0.5, greedy by the variant's score) and gives
precision, recall and F1, and the average precision of the variant's ranked detections
against the base's taken as the ground truth (AP50, averaged over the base's classes):
the agreement on the task itself, which a tensor-by-tensor figure cannot give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FEWEST",
    "FLOOR",
    "MATCH_IOU",
    "NMS_IOU",
    "SCORE_THRESHOLD",
    "DetectionAgreement",
    "Detections",
    "agreement",
    "decode",
    "iou_matrix",
    "nms",
    "sample_thresholds",
    "thresholds_of",
    "xyxy",
]

SCORE_THRESHOLD = 0.25
"""Ultralytics' default confidence for predictions."""
NMS_IOU = 0.5
MATCH_IOU = 0.5
FEWEST = 3
"""A sample where the base detects fewer objects at :data:`SCORE_THRESHOLD` is judged at
the score of its third best detection (or its last, with fewer)."""
FLOOR = 0.01
"""No threshold goes below this: lower scores are background noise."""


@dataclass(frozen=True)
class Detections:
    """One sample's detections: ``boxes`` ``(n, 4)`` as ``x1, y1, x2, y2``, their scores
    and class indices ``(n,)``."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def at_least(self, threshold: float) -> Detections:
        """Those scoring ``threshold`` or more: what :func:`decode` at that threshold
        gives, when these were decoded at a lower one (a box NMS removed was removed by
        one that scores more, so it is above the threshold too)."""
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


@dataclass(frozen=True)
class DetectionAgreement:
    """The variant's detections against the base's over all samples: ``base`` and
    ``variant`` count them, ``matched`` the pairs (same class, IoU ≥ 0.5); ``ap50`` is the
    mean over the base's classes of the variant's average precision."""

    base: int
    variant: int
    matched: int
    ap50: float

    @property
    def precision(self) -> float:
        return self.matched / self.variant if self.variant else float(self.base == 0)

    @property
    def recall(self) -> float:
        return self.matched / self.base if self.base else float(self.variant == 0)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def xyxy(boxes: np.ndarray) -> np.ndarray:
    """``(cx, cy, w, h)`` rows as ``(x1, y1, x2, y2)``."""
    b = np.asarray(boxes, dtype=np.float64)
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``x1, y1, x2, y2`` box of ``a`` with every one of ``b``."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        order = rest[iou_matrix(boxes[best : best + 1], boxes[rest])[0] < iou]
    return np.array(keep, dtype=np.int64)


def decode(
    boxes: np.ndarray,
    scores: np.ndarray,
    threshold: float | np.ndarray = SCORE_THRESHOLD,
    iou: float = NMS_IOU,
) -> list[Detections]:
    """Per sample of ``boxes`` ``(B, N, 4)`` (cx, cy, w, h) and ``scores`` ``(B, N, C)``:
    the anchors whose best class scores ``threshold`` (one, or one per sample) or more,
    after class-wise NMS."""
    found = []
    limits = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(boxes),))
    for box, score, limit in zip(boxes, scores, limits, strict=True):
        classes, best = np.argmax(score, axis=1), np.max(score, axis=1)
        sure = best >= limit
        corners, best, classes = xyxy(box[sure]), best[sure], classes[sure]
        keep = [
            np.flatnonzero(classes == c)[nms(corners[classes == c], best[classes == c], iou)]
            for c in np.unique(classes)
        ]
        kept = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
        found.append(Detections(corners[kept], best[kept], classes[kept]))
    return found


def sample_thresholds(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The threshold each sample of a packed head's ``boxes`` and ``scores`` (as
    :func:`decode` takes them) is judged at: :data:`SCORE_THRESHOLD`, or the score of the
    base's :data:`FEWEST`-th best detection where fewer reach it (never under
    :data:`FLOOR`)."""
    return thresholds_of(decode(boxes, scores, FLOOR))


def thresholds_of(found: list[Detections]) -> np.ndarray:
    """:func:`sample_thresholds` from the base's detections decoded at :data:`FLOOR`."""
    out = np.full(len(found), SCORE_THRESHOLD)
    for i, sample in enumerate(found):
        best = np.sort(sample.scores)[::-1][:FEWEST]
        if len(best) and best[-1] < SCORE_THRESHOLD:
            out[i] = float(best[-1])
    return out


def agreement(
    base: list[Detections], variant: list[Detections], iou: float = MATCH_IOU
) -> DetectionAgreement:
    """The variant's detections matched to the base's, sample by sample (see the module)."""
    hits: dict[int, list[tuple[float, bool]]] = {}
    truths: dict[int, int] = {}
    for ref, got in zip(base, variant, strict=True):
        for c in ref.classes:
            truths[int(c)] = truths.get(int(c), 0) + 1
        for c, score, hit in _matches(ref, got, iou):
            hits.setdefault(c, []).append((score, hit))
    matched = sum(hit for ranked in hits.values() for _, hit in ranked)
    aps = [_average_precision(hits.get(c, []), n) for c, n in truths.items()]
    ap = float(np.mean(aps)) if aps else float(not hits)
    counts = sum(len(d) for d in base), sum(len(d) for d in variant)
    return DetectionAgreement(counts[0], counts[1], matched, ap)


def _matches(ref: Detections, got: Detections, iou: float) -> list[tuple[int, float, bool]]:
    """Each of ``got``'s detections, best first: its class, score, and whether it matched a
    still unmatched base detection of its class at ``iou`` or more."""
    overlap = iou_matrix(got.boxes, ref.boxes) if len(got) and len(ref) else None
    taken = np.zeros(len(ref), dtype=bool)
    out = []
    for i in np.argsort(-got.scores, kind="stable"):
        hit = False
        if overlap is not None:
            free = (ref.classes == got.classes[i]) & ~taken & (overlap[i] >= iou)
            if free.any():
                j = int(np.argmax(np.where(free, overlap[i], -1.0)))
                taken[j], hit = True, True
        out.append((int(got.classes[i]), float(got.scores[i]), hit))
    return out


def _average_precision(ranked: list[tuple[float, bool]], truths: int) -> float:
    """All-point interpolated AP of detections ``(score, hit)`` against ``truths``."""
    if not ranked:
        return 0.0
    hit = np.array([h for _, h in sorted(ranked, key=lambda r: -r[0])], dtype=np.float64)
    tp = np.cumsum(hit)
    recall = np.concatenate([[0.0], tp / truths])
    precision = np.concatenate([[1.0], tp / np.arange(1, len(hit) + 1)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))
