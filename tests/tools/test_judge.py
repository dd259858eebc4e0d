"""Tests for the real-model benchmark's own judge (tools/bench/_judge.py) on small arrays:
each kind's figure and bar, the collapse rules, packed heads, interface changes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) omits the cwd
    sys.path.insert(0, str(REPO_ROOT))

from tools.bench._judge import (  # noqa: E402
    collapse,
    guess_spec,
    interface_changes,
    judge_output,
    levenshtein,
)

RNG = np.random.default_rng(0)


def packed_head(samples: int = 6, classes: int = 3, anchors: int = 50) -> np.ndarray:
    """``[samples, 1, 4 + classes, anchors]``: boxes in pixels, scores in [0, 1]."""
    boxes = RNG.uniform(0, 320, (samples, 1, 4, anchors))
    scores = RNG.uniform(0, 1, (samples, 1, classes, anchors)) ** 4
    return np.concatenate([boxes, scores], axis=2).astype(np.float32)


def one(name: str, spec: str, base: np.ndarray, got: np.ndarray):  # type: ignore[no-untyped-def]
    (verdict,) = judge_output(name, spec, base, got)
    return verdict


def test_packed_head_with_collapsed_scores_is_broken_though_boxes_hold() -> None:
    base = packed_head()
    got = base.copy()
    got[:, :, 4:, :] = 0  # int8 with one scale for boxes (0-320) and scores (0-1)
    boxes, scores = judge_output("output0", "packed:4", base, got)
    assert boxes.output == "output0[boxes]" and boxes.ok
    assert not scores.ok and "constant" in scores.failures[0]
    # judged whole, the boxes dominate: a flat cosine would call this near perfect
    flat = one("output0", "map", base, got)
    assert flat.figures["cosine"] > 0.99


def test_packed_head_kept_is_usable() -> None:
    base = packed_head()
    got = base + RNG.normal(0, 1e-3, base.shape).astype(np.float32)
    assert all(v.ok for v in judge_output("output0", "packed:4", base, got))


def test_packed_scores_with_swapped_classes_fail_top1() -> None:
    base = packed_head()
    got = base.copy()
    got[:, :, 4:, :] = base[:, :, [5, 6, 4], :]
    _, scores = judge_output("output0", "packed:4", base, got)
    assert scores.figures["top1"] < 0.7 and not scores.ok


def test_embedding_rows_judged_by_row_cosine_and_nearest_neighbour() -> None:
    base = RNG.normal(0, 1, (8, 1, 96)).astype(np.float32)
    close = one("e", "embedding", base, base + RNG.normal(0, 0.05, base.shape))
    assert close.ok and close.figures["row_cosine"] > 0.99 and close.figures["nearest"] == 1
    shuffled = one("e", "embedding", base, base[[1, 0, 3, 2, 5, 4, 7, 6]])
    assert not shuffled.ok and shuffled.figures["nearest"] == 0


def test_embedding_judged_as_scores_would_refuse_what_rows_keep() -> None:
    """An embedding whose rows keep cosine ≈ 0.98 flips many arg-maxes: the kind matters."""
    base = RNG.normal(0, 1, (64, 96)).astype(np.float32)
    got = base + RNG.normal(0, 0.2, base.shape).astype(np.float32)
    assert one("e", "embedding", base, got).ok
    assert one("e", "scores", base, got).figures["top1"] < 1.0


def test_scores_top1_and_kl_on_probabilities() -> None:
    logits = RNG.normal(0, 3, (10, 5))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    same = one("p", "scores", probs, probs)
    assert (
        same.ok and same.figures["top1"] == 1 and same.figures["kl"] == pytest.approx(0, abs=1e-6)
    )
    flipped = one("p", "scores", probs, probs[:, ::-1].copy())
    assert not flipped.ok and flipped.figures["kl"] > 0


def test_flag_stuck_near_one_value_collapses() -> None:
    base = np.array([0.05, 0.9, 0.1, 0.8, 0.95, 0.02, 0.7, 0.3]).reshape(8, 1, 1)
    got = np.full_like(base, 0.5) + RNG.normal(0, 0.001, base.shape)
    verdict = one("handedness", "flag", base, got)
    assert not verdict.ok and "near constant" in verdict.failures[0]


def test_flag_logits_decided_at_zero() -> None:
    base = np.array([-3.0, 2.0, -1.0, 4.0]).reshape(4, 1)
    assert one("f", "flag:logit", base, base + 0.2).ok
    assert one("f", "flag:logit", base, -base).figures["decision"] == 0


def test_boxes_relative_l2_and_max_error_in_their_units() -> None:
    base = RNG.uniform(10, 300, (4, 1, 20, 4))
    verdict = one("b", "boxes", base, base + 2.0)
    assert verdict.ok and verdict.figures["max_abs"] == pytest.approx(2.0)
    assert not one("b", "boxes", base, base * 1.5).ok


def test_landmarks_error_relative_to_their_spread() -> None:
    base = RNG.uniform(0, 200, (4, 1, 63))
    assert one("lm", "landmarks:3", base, base + 1.0).ok
    shifted = one("lm", "landmarks:3", base, base + 30.0)  # ~half their spread
    assert not shifted.ok and shifted.figures["error"] > 0.1


def test_mask_iou_and_the_top_share_where_the_base_is_empty() -> None:
    base = np.zeros((2, 1, 16, 16))
    base[:, :, 4:12, 4:12] = 0.9
    assert one("m", "mask", base, base).figures["iou"] == 1
    eroded = base.copy()
    eroded[:, :, 4:12, 4:8] = 0.1
    assert one("m", "mask", base, eroded).figures["iou"] == pytest.approx(0.5)
    faint = RNG.uniform(0, 0.2, (3, 1, 32, 32))  # nothing above 0.5: its top 5 % is judged
    assert one("m", "mask@0.5", faint, faint).figures["iou"] == 1
    assert one("m", "mask@0.5", faint, faint[:, :, ::-1]).figures["iou"] < 0.2


def test_ctc_greedy_text_agreement() -> None:
    def probs(labels: list[int]) -> np.ndarray:
        return np.eye(5)[labels][None]

    base = probs([0, 1, 1, 0, 2, 3, 0, 0])  # "1 2 3"
    assert one("t", "ctc:0", base, probs([1, 0, 0, 2, 2, 3, 3, 0])).figures["text"] == 1
    assert one("t", "ctc", base, probs([0, 1, 1, 0, 4, 3, 0, 0])).figures["text"] == pytest.approx(
        2 / 3
    )
    assert levenshtein([1, 2, 3], [1, 3]) == 1


def test_map_cosine_and_non_finite_values() -> None:
    base = RNG.normal(0, 1, (3, 8, 8))
    assert one("x", "map", base, base * 2).figures["cosine"] == pytest.approx(1)
    bad = base.copy()
    bad[0, 0, 0] = np.nan
    assert "non-finite" in one("x", "map", base, bad).failures[0]


def test_collapse_to_all_zeros_and_changed_shape() -> None:
    base = RNG.normal(0, 1, (3, 10))
    assert "constant" in collapse(base, np.zeros_like(base))[0]
    assert collapse(np.zeros_like(base), np.zeros_like(base)) == []
    assert "shape" in one("x", "map", base, base[:, :5]).failures[0]


def test_exact_outputs_and_unknown_kinds() -> None:
    labels = np.array([[1], [2], [3], [4]])
    assert one("l", "exact", labels, labels).ok
    assert not one("l", "exact", labels, labels + 1).ok
    with pytest.raises(ValueError, match="unknown output kind"):
        judge_output("x", "nonsense", labels, labels)


@pytest.mark.parametrize(
    ("array", "spec"),
    [
        (np.zeros((4, 1), np.int64), "exact"),
        (np.full((4, 1, 1), 0.3, np.float32), "flag"),
        (np.full((4, 1), 3.0, np.float32), "flag:logit"),
        (np.zeros((4, 1, 10), np.float32), "scores"),
        (np.zeros((4, 1, 8, 8), np.float32), "map"),
    ],
)
def test_guess_spec(array: np.ndarray, spec: str) -> None:
    assert guess_spec(array) == spec


def test_interface_changes_name_dtype_and_shape_not_renames() -> None:
    base = [("x", "float32", (None, 3, 32, 32))]
    assert interface_changes(base, [("args_0", "float32", (1, 3, 32, 32))], "input") == []
    (line,) = interface_changes(base, [("x", "int8", (None, 3, 32, 32))], "input")
    assert "float32 → int8" in line
    assert "shape" in interface_changes(base, [("x", "float32", (1, 32, 32, 3))], "input")[0]
    assert "2 outputs" in interface_changes(base, base * 2, "output")[0]
