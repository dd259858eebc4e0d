"""The real-model benchmark's own detection decode, NMS and agreement with the base.

Apart from edgeship's ``models.detection`` (see :mod:`_judge`), on numpy arrays, one
sample at a time (batch axis 1):

* ``yolo``: one packed head ``[1, 4 + C, N]``, box rows centre-x, centre-y, width,
  height in pixels, then C class scores in [0, 1] (YOLOv8 exports);
* ``ssd``: MediaPipe's pair ``[1, N, 4 + 2K]`` raw box offsets (centre and size in input
  pixels, relative to fixed-size anchors, then K keypoints) and ``[1, N, 1]`` score
  logits, with the anchors of :func:`ssd_anchors`.

The agreement is an AP at IoU 0.5 against the base, per sample then averaged: the base's
detections (NMS at IoU
0.45, score ≥ the detector's threshold, or its five best where fewer than three pass)
are the ground truth; the result's, decoded at half that threshold and ranked by their
scores, are matched greedily to them (same class, IoU ≥ 0.5, each once), and the area
under the precision-recall curve (all points) is the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Detector", "agreement", "decode", "iou", "nms", "ssd_anchors"]

MATCH_IOU = 0.5
NMS_IOU = 0.45
FEWEST = 3
TOP = 5


@dataclass(frozen=True)
class Detector:
    """How to read a detector's outputs: ``style`` ``yolo`` or ``ssd``, the output names,
    the input's (height, width) in pixels, the anchors (ssd) and the score threshold."""

    style: str
    boxes: str
    scores: str = ""
    size: tuple[int, int] = (320, 320)
    anchors: np.ndarray | None = None
    threshold: float = 0.25


def ssd_anchors(
    size: tuple[int, int], strides: tuple[int, ...], per_cell: tuple[int, ...]
) -> np.ndarray:
    """Anchor centres ``[N, 2]`` (x, y in [0, 1]) as MediaPipe's SSD anchor calculator
    lays them with fixed-size anchors: for each stride, each cell of its grid
    ``per_cell`` times."""
    h, w = size
    centres = []
    for stride, count in zip(strides, per_cell, strict=True):
        rows, cols = -(-h // stride), -(-w // stride)
        for y in range(rows):
            for x in range(cols):
                centres += [((x + 0.5) / cols, (y + 0.5) / rows)] * count
    return np.asarray(centres, np.float64)


def decode(
    det: Detector, outputs: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample's candidates: boxes ``[N, 4]`` (x1, y1, x2, y2, in input pixels),
    scores ``[N]`` and classes ``[N]``."""
    if det.style == "yolo":
        head = outputs[det.boxes][0].astype(np.float64)  # [4 + C, N]
        cx, cy, w, h = head[:4]
        scores = head[4:].max(0)
        classes = head[4:].argmax(0)
    else:
        raw = outputs[det.boxes][0].astype(np.float64)  # [N, 4 + 2K]
        assert det.anchors is not None
        ih, iw = det.size
        cx = (raw[:, 0] / iw + det.anchors[:, 0]) * iw
        cy = (raw[:, 1] / ih + det.anchors[:, 1]) * ih
        w, h = raw[:, 2], raw[:, 3]
        logits = np.clip(outputs[det.scores][0].astype(np.float64).reshape(-1), -80, 80)
        scores = 1 / (1 + np.exp(-logits))
        classes = np.zeros(len(scores), np.int64)
    w, h = np.abs(w), np.abs(h)  # a raw head's size may come out negative on background
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, scores, classes


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box ``[4]`` with each of ``boxes`` ``[N, 4]`` (x1, y1, x2, y2)."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = _area(box) + _area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by per-class greedy NMS at :data:`NMS_IOU` among scores ≥ ``threshold``,
    best first."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= threshold]
    keep: list[int] = []
    for i in order:
        same = [k for k in keep if classes[k] == classes[i]]
        if not same or iou(boxes[i], boxes[same]).max() < NMS_IOU:
            keep.append(int(i))
    return np.asarray(keep, np.int64)


def _truth(det: Detector, outputs: dict[str, np.ndarray]) -> tuple[float, np.ndarray, np.ndarray]:
    """The base's threshold for this sample and its detections (boxes, classes)."""
    boxes, scores, classes = decode(det, outputs)
    kept = nms(boxes, scores, classes, det.threshold)
    threshold = det.threshold
    if len(kept) < FEWEST:
        best = nms(boxes, scores, classes, 0.0)[:TOP]
        threshold = float(scores[best[-1]]) if len(best) else det.threshold
        kept = best
    return threshold, boxes[kept], classes[kept]


def agreement(
    det: Detector, base: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]]
) -> dict[str, float]:
    """``ap50``: the mean over the samples of the result's AP against the base's
    detections (each sample has its own threshold), with the counts it rests on
    (``base_detections``, ``matched``)."""
    aps = []
    total = matched = 0
    for b_out, g_out in zip(base, got, strict=True):
        ranked: list[tuple[float, bool]] = []
        threshold, truth, truth_cls = _truth(det, b_out)
        boxes, scores, classes = decode(det, g_out)
        kept = nms(boxes, scores, classes, threshold / 2)
        used = np.zeros(len(truth), bool)
        total += len(truth)
        for i in kept:
            hit = False
            if len(truth):
                overlap = np.where((truth_cls == classes[i]) & ~used, iou(boxes[i], truth), 0.0)
                j = int(overlap.argmax())
                if overlap[j] >= MATCH_IOU:
                    used[j] = hit = True
                    matched += 1
            ranked.append((float(scores[i]), hit))
        aps.append(_ap(ranked, len(truth)))
    return {"ap50": float(np.mean(aps)), "base_detections": float(total), "matched": float(matched)}


def _ap(ranked: list[tuple[float, bool]], total: int) -> float:
    """All-point interpolated average precision of ``(score, hit)`` over ``total`` truths."""
    if total == 0:
        return 1.0 if not ranked else 0.0
    hits = np.array([h for _, h in sorted(ranked, key=lambda r: -r[0])], bool)
    if not hits.any():
        return 0.0
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / total
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))
