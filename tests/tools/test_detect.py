"""Tests for the real-model benchmark's own detection decode, NMS and agreement
(tools/bench/_detect.py) on small heads built here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) omits the cwd
    sys.path.insert(0, str(REPO_ROOT))

from tools.bench._detect import Detector, agreement, decode, iou, nms, ssd_anchors  # noqa: E402

YOLO = Detector("yolo", "out", size=(320, 320), threshold=0.25)


def yolo_head(
    objects: list[tuple[float, float, float, float, int, float]], anchors: int = 40
) -> dict[str, np.ndarray]:
    """A ``[1, 4 + 3, anchors]`` head holding ``objects`` (cx, cy, w, h, class, score) on
    its first anchors, faint noise on the rest."""
    rng = np.random.default_rng(len(objects))
    head = np.zeros((1, 7, anchors), np.float32)
    head[0, :4] = rng.uniform(20, 300, (4, anchors))
    head[0, 4:] = rng.uniform(0, 0.01, (3, anchors))
    for k, (cx, cy, w, h, cls, score) in enumerate(objects):
        head[0, :4, k] = cx, cy, w, h
        head[0, 4 + cls, k] = score
    return {"out": head}


SCENE = [(50, 50, 40, 40, 0, 0.9), (200, 100, 60, 30, 1, 0.8), (120, 250, 50, 50, 2, 0.6)]


def test_yolo_decode_gives_corner_boxes_scores_and_classes() -> None:
    boxes, scores, classes = decode(YOLO, yolo_head(SCENE))
    assert boxes[0].tolist() == pytest.approx([30, 30, 70, 70])
    assert scores[1] == pytest.approx(0.8) and classes[1] == 1


def test_nms_drops_an_overlapping_box_of_the_same_class_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, classes, 0.0).tolist() == [0, 2, 3]
    assert nms(boxes, scores, classes, 0.7).tolist() == [0, 2]
    assert iou(boxes[0], boxes[[0, 3]]).tolist() == [1.0, 0.0]


def test_agreement_is_one_on_the_same_detections() -> None:
    base = [yolo_head(SCENE), yolo_head(SCENE[:2])]  # the second: its five best
    found = agreement(YOLO, base, base)
    assert found["ap50"] == 1.0 and found["matched"] == found["base_detections"] == 3 + 5


def test_collapsed_scores_find_nothing() -> None:
    base = [yolo_head(SCENE)]
    got = [{"out": base[0]["out"].copy()}]
    got[0]["out"][0, 4:] = 0
    assert agreement(YOLO, base, got)["ap50"] == 0.0


def test_moved_boxes_and_swapped_classes_do_not_match() -> None:
    base = [yolo_head(SCENE)]
    moved = [yolo_head([(cx + w, cy, w, h, c, s) for cx, cy, w, h, c, s in SCENE])]
    swapped = [yolo_head([(cx, cy, w, h, (c + 1) % 3, s) for cx, cy, w, h, c, s in SCENE])]
    assert agreement(YOLO, base, moved)["matched"] == 0
    assert agreement(YOLO, base, swapped)["ap50"] == 0.0


def test_lower_scores_still_match_at_half_the_threshold() -> None:
    base = [yolo_head(SCENE)]
    dimmer = [yolo_head([(*o[:5], o[5] * 0.6) for o in SCENE])]  # 0.6 * 0.6 = 0.36 ≥ 0.125
    assert agreement(YOLO, base, dimmer)["ap50"] == 1.0


def test_few_base_detections_use_its_five_best() -> None:
    faint = [yolo_head([(50, 50, 40, 40, 0, 0.1), (200, 200, 40, 40, 1, 0.08)])]
    found = agreement(YOLO, faint, faint)
    assert found["base_detections"] == 5 and found["ap50"] == 1.0


def test_ssd_anchors_of_mediapipe_detectors() -> None:
    assert len(ssd_anchors((192, 192), (8, 16, 16, 16), (2, 2, 2, 2))) == 2016
    anchors = ssd_anchors((128, 128), (8, 16, 16, 16), (2, 2, 2, 2))
    assert len(anchors) == 896 and anchors[0].tolist() == [0.5 / 16, 0.5 / 16]


def test_ssd_decode_offsets_from_anchors_and_logit_scores() -> None:
    anchors = np.array([[0.25, 0.25], [0.75, 0.75]])
    det = Detector("ssd", "boxes", "scores", (100, 100), anchors, threshold=0.5)
    raw = np.array([[[10, 0, 20, 20], [0, 0, 10, -10]]], np.float32)
    boxes, scores, classes = decode(det, {"boxes": raw, "scores": np.array([[[0.0], [2.0]]])})
    assert boxes.ravel().tolist() == pytest.approx([25, 15, 45, 35, 70, 70, 80, 80])
    assert scores[0] == pytest.approx(0.5) and classes.tolist() == [0, 0]
