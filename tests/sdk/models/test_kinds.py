"""Every output judged for what it is (issue 24): kinds inferred and set, each kind's
figures and collapse rule, packed detection heads split and their detections compared,
and interface changes listed. Pure functions on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.compress import guard
from edgeship.compress.guard import GuardPolicy
from edgeship.compress.report import speed_text
from edgeship.core.errors import UsageError
from edgeship.models import detection
from edgeship.models.estimate import share_text, wilson
from edgeship.models.interface import interface_changes
from edgeship.models.kinds import (
    OutputVerdict,
    infer_kind,
    judge,
    judge_outputs,
    packed_axis,
    parse_kinds,
    worst,
)
from edgeship_runtime.signature import Signature, TensorSpec

RNG = np.random.default_rng(0)


def _packed(n: int = 4, classes: int = 3, anchors: int = 50) -> np.ndarray:
    """A YOLOv8-style head ``(n, 4 + classes, anchors)``: boxes in pixels, a few sure
    anchors among background ones."""
    rng = np.random.default_rng(1)
    centres = rng.uniform(40, 280, (n, 2, anchors))
    sizes = rng.uniform(20, 60, (n, 2, anchors))
    scores = rng.uniform(0.0, 0.05, (n, classes, anchors))
    for i in range(n):
        for a in range(0, anchors, 7):  # every 7th anchor is an object of some class
            scores[i, a % classes, a] = rng.uniform(0.6, 0.95)
    return np.concatenate([centres, sizes, scores], axis=1).astype(np.float32)


def _hand(n: int = 8) -> np.ndarray:
    """``(n, 63)``: 21 points of x, y, z flattened as MediaPipe's hand landmarks: five
    fingers of four joints, each a step from the last, in pixels of a 224-pixel crop."""
    rng = np.random.default_rng(2)
    wrist = rng.uniform(60, 160, (n, 1, 3)) * [1, 1, 0]
    steps = rng.normal(0, 1, (n, 5, 4, 3)) * [12, 12, 3] + [0, -15, 0]
    joints = (wrist[:, :, None] + np.cumsum(steps, axis=2)).reshape(n, 20, 3)
    return np.concatenate([wrist, joints], axis=1).reshape(n, 63)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


# ------------------------------------------------------------------------ kinds


@pytest.mark.parametrize(
    ("name", "values", "kind"),
    [
        ("output0", _packed(), "detections"),
        ("logits", RNG.standard_normal((8, 10)), "scores"),
        ("y", RNG.standard_normal((8, 10)), "scores"),
        ("y", _unit(RNG.standard_normal((8, 128))), "embedding"),
        ("y", RNG.uniform(0, 1, (8, 1)), "flags"),
        ("y", RNG.standard_normal((8, 1)) * 50, "boxes"),
        ("y", RNG.standard_normal((8, 21, 3)), "landmarks"),
        ("Identity_1", RNG.standard_normal((8, 63)), "scores"),
        ("world_landmarks", RNG.standard_normal((8, 63)), "landmarks"),
        ("handedness", RNG.uniform(0, 1, (8, 1)), "flags"),
        ("y", RNG.standard_normal((8, 1, 16, 16)), "map"),
        ("bbox", RNG.standard_normal((8, 4)), "boxes"),
        ("y", RNG.standard_normal((8, 2, 3)), "tensor"),
        ("classificators", RNG.standard_normal((8, 896, 1)) * 20, "flags"),
        ("Identity", RNG.standard_normal((8, 2016, 18)) * 100, "boxes"),
        ("Identity", _hand(), "landmarks"),
        ("Identity", _hand().reshape(8, 1, 1, 63), "landmarks"),
        ("y", RNG.standard_normal((8, 96)) * 10, "scores"),
        ("y", RNG.standard_normal((8, 20, 6625)), "map"),
        ("hn", RNG.standard_normal((8, 1, 128)), "tensor"),  # an LSTM's state out
        ("stateN", RNG.standard_normal((8, 2, 1, 128)), "tensor"),
        ("speech_probs", RNG.uniform(0, 1, 8), "flags"),  # one a sample: no classes to rank
        ("logits", RNG.standard_normal((8, 1)) * 3, "flags"),
    ],
)
def test_a_kind_is_inferred_from_name_shape_and_values(
    name: str, values: np.ndarray, kind: str
) -> None:
    assert infer_kind(name, values) == kind


def test_a_packed_head_is_found_on_either_axis_and_not_in_other_tensors() -> None:
    head = _packed()
    assert packed_axis(head) == 1
    assert packed_axis(np.swapaxes(head, 1, 2)) == 2
    assert packed_axis(RNG.standard_normal((4, 7, 50))) is None  # scores not in [0, 1]
    assert packed_axis(RNG.uniform(0, 1, (4, 7, 50))) is None  # no wide coordinates


def test_output_kinds_are_parsed_and_checked() -> None:
    assert parse_kinds(["emb=embedding", "a=b=flags"]) == {"emb": "embedding", "a=b": "flags"}
    with pytest.raises(UsageError, match="NAME=KIND"):
        parse_kinds(["embedding"])
    with pytest.raises(UsageError, match="unknown kind 'vector'"):
        parse_kinds(["emb=vector"])
    with pytest.raises(UsageError, match="unknown kind"):
        GuardPolicy(output_kinds={"y": "vector"})
    with pytest.raises(UsageError, match=r"not outputs of the model \(\['y'\]\)"):
        judge_outputs({"y": np.ones((2, 2))}, {"y": np.ones((2, 2))}, {"z": "flags"})


# --------------------------------------------------------------- verdicts by kind


def test_the_second_output_collapsing_is_named_though_the_first_holds() -> None:
    base = {"scores": RNG.standard_normal((16, 10)), "mask": RNG.uniform(0, 1, (16, 1, 8, 8))}
    new = {"scores": base["scores"] + 0.01, "mask": np.zeros_like(base["mask"])}
    verdicts = judge_outputs(base, new)
    assert [v.collapsed for v in verdicts] == [False, True]
    reasons = guard.collapse_reasons(verdicts, None, GuardPolicy())
    assert reasons[0] == "output 'mask': all zeros over the 16 samples (the base's varies)"
    assert all(r.startswith("output 'mask': ") for r in reasons)
    least = worst(verdicts)
    assert least is not None and least.output == "mask" and least.health == 0.0


def test_a_packed_head_whose_scores_are_zeroed_collapses_naming_the_part() -> None:
    base = _packed()
    new = base.copy()
    new[:, 4:, :] = 0.0  # int8 rounding every class score to 0, boxes intact
    verdicts = judge("output0", base, new)
    by_part = {v.part: v for v in verdicts}
    assert set(by_part) == {"boxes", "scores", "detections"}
    assert not by_part["boxes"].collapsed
    assert by_part["scores"].reasons[0].startswith("all zeros over")
    assert by_part["detections"].metrics["detection_f1"] == 0.0
    assert by_part["detections"].collapsed
    reasons = guard.collapse_reasons(verdicts, None, GuardPolicy())
    assert any(r.startswith("output 'output0' (scores): all zeros") for r in reasons)
    # the flat cosine that used to be reported hardly moves
    from edgeship.models.fidelity import cosine_similarity

    assert cosine_similarity(base, new) > 0.999


def test_a_packed_head_that_holds_is_kept() -> None:
    base = _packed()
    noise = np.random.default_rng(2).normal(0, 1, base.shape).astype(np.float32)
    new = base + noise * np.array([0.5, 0.5, 0.5, 0.5, 0.004, 0.004, 0.004])[None, :, None]
    verdicts = judge("output0", base, new)
    assert not any(v.collapsed for v in verdicts), [v.reasons for v in verdicts]
    task = next(v for v in verdicts if v.part == "detections")
    assert task.metrics["detection_f1"] == 1.0 and task.metrics["base_detections"] > 0


def _background(n: int = 4, classes: int = 18, anchors: int = 300) -> np.ndarray:
    """A packed head on inputs with nothing to detect: every score under 0.05, most near
    1e-4, a few anchors a little surer than the rest (a detector shown a landscape)."""
    rng = np.random.default_rng(5)
    boxes = rng.uniform(20, 300, (n, 4, anchors))
    scores = rng.uniform(0.0, 2e-4, (n, classes, anchors))
    for i in range(n):
        scores[i, i % classes, 10 * i : 10 * i + 5] = rng.uniform(0.02, 0.05, 5)
    return np.concatenate([boxes, scores], axis=1).astype(np.float32)


def test_a_packed_head_sure_of_nothing_is_judged_on_its_surest_anchors() -> None:
    base = _background()
    step = 2e-4  # INT8 of the scores at their own scale: background rounded, arg-max noise
    new = base.copy()
    new[:, 4:] = np.round(base[:, 4:] / step) * step
    verdicts = judge("output0", base, new)
    assert not any(v.collapsed for v in verdicts), [v.reasons for v in verdicts]
    scores = next(v for v in verdicts if v.part == "scores")
    assert scores.samples < base.shape[-1]  # a few anchors a sample, not every one
    assert scores.metrics["top1_agreement"] == 1.0
    zeroed = base.copy()
    zeroed[:, 4:] = 0.0  # one scale with the boxes' pixels: every score 0
    by_part = {v.part: v for v in judge("output0", base, zeroed)}
    assert by_part["scores"].collapsed and by_part["scores"].reasons[0].startswith("all zeros")


def test_detections_above_a_threshold_are_what_decoding_there_gives() -> None:
    head = _packed(anchors=140)
    boxes, scores = head[:, :4].transpose(0, 2, 1), head[:, 4:].transpose(0, 2, 1)
    boxes[:, 1::2, :2] = boxes[:, ::2, :2] + 3.0  # neighbours overlapping: NMS removes some
    loose = detection.decode(boxes, scores, detection.FLOOR)
    above_floor = int((scores.max(axis=2) >= detection.FLOOR).sum())
    assert sum(len(d) for d in loose) < above_floor  # NMS removed some
    for threshold in (0.04, 0.7):
        direct = detection.decode(boxes, scores, threshold)
        assert sum(len(d) for d in direct) > 0
        for got, want in zip([d.at_least(threshold) for d in loose], direct, strict=True):
            assert sorted(got.scores.tolist()) == sorted(want.scores.tolist())


def test_a_packed_head_the_base_is_unsure_of_is_judged_at_its_own_threshold() -> None:
    base = _packed()
    objects = base[:, 4:] > 0.5
    base[:, 4:][objects] *= 0.2  # every object scored 0.12-0.19: none reaches 0.25
    thresholds = detection.sample_thresholds(
        base[:, :4].transpose(0, 2, 1), base[:, 4:].transpose(0, 2, 1)
    )
    assert (thresholds < detection.SCORE_THRESHOLD).all() and (thresholds >= 0.1).all()
    noisy = base + np.random.default_rng(3).normal(0, 0.004, base.shape).astype(np.float32)
    task = next(v for v in judge("output0", base, noisy) if v.part == "detections")
    ap50 = task.metrics["detection_ap50"]  # close scores: the noise swaps a few in rank
    assert not task.collapsed and ap50 is not None and ap50 > 0.9
    assert task.metrics["base_detections"] == detection.FEWEST * len(base)
    moved = base.copy()
    moved[:, 0, ::14] += 60.0  # half the objects moved by more than their width
    by_part = {v.part: v for v in judge("output0", base, moved)}
    assert not by_part["boxes"].collapsed and not by_part["scores"].collapsed
    assert by_part["detections"].collapsed  # what held on nothing at 0.25
    assert by_part["detections"].reasons[0].startswith("AP50 against the base")


def test_an_embedding_that_keeps_its_rows_is_kept_though_its_arg_max_moves() -> None:
    rng = np.random.default_rng(3)
    people = _unit(rng.standard_normal((8, 64)))  # 8 people, 4 faces each
    base = _unit(np.repeat(people, 4, axis=0) + 0.3 * _unit(rng.standard_normal((32, 64))))
    noise = np.random.default_rng(4).standard_normal(base.shape)
    new = _unit(base + 0.3 * _unit(noise))  # each row turned by about 17 degrees
    [verdict] = judge("y", base, new)
    assert verdict.kind == "embedding" and verdict.inferred
    row_cosine = verdict.metrics["row_cosine"]
    assert row_cosine is not None and 0.94 < row_cosine < 0.97
    assert not verdict.collapsed and verdict.metrics["nn_agreement"] == 1.0
    # judged as class scores (the old rule), its arg-max agreement would refuse it
    [as_scores] = judge("y", base, new, kind="scores")
    assert not as_scores.inferred and as_scores.collapsed
    assert as_scores.reasons[0].startswith("top-1 agreement")


def test_an_embedding_whose_neighbours_change_collapses() -> None:
    base = _unit(np.random.default_rng(5).standard_normal((16, 8)))
    new = _unit(np.random.default_rng(6).standard_normal((16, 8)))
    [verdict] = judge("embedding", base, new)
    assert any(r.startswith("mean row cosine") for r in verdict.reasons)


def test_a_flag_is_judged_by_its_decisions() -> None:
    base = np.array([[0.9], [0.1], [0.8], [0.2], [0.7], [0.3], [0.95], [0.05], [0.6], [0.4]])
    close = base + 0.05
    [held] = judge("handedness", base, close)
    assert held.kind == "flags" and held.metrics["decision_agreement"] == 1.0
    assert not held.collapsed
    near_constant = np.full_like(base, 0.55) + np.linspace(0, 0.01, len(base))[:, None]
    [lost] = judge("handedness", base, near_constant)
    assert lost.metrics["decision_agreement"] == 0.5
    assert "decision agreement 50.0 % [23.7, 76.3] n=10" in lost.line()  # one a sample
    assert lost.reasons == [
        "decision agreement 50.0% < 90.0% against the base",
        "mean |Δ| of the probability 0.291 > 0.1 against the base",
    ]


def test_a_flag_whose_decisions_are_all_alike_is_judged_by_its_probabilities() -> None:
    base = np.linspace(0.1, 0.4, 12)[:, None]  # a voice detector on noise: never above 0.5
    faithful = base + RNG.normal(0, 0.005, base.shape)
    [held] = judge("speech", base, faithful, kind="flags")
    assert not held.collapsed and held.metrics["decision_agreement"] == 1.0
    pushed = base * 0.1  # every probability moved towards 0: still "no speech" at 0.5
    [moved] = judge("speech", base, pushed, kind="flags")
    assert moved.metrics["decision_agreement"] == 1.0
    assert moved.reasons == ["mean |Δ| of the probability 0.225 > 0.1 against the base"]
    logits = np.log(base / (1 - base))  # the same as logits, judged through the sigmoid
    [as_logits] = judge("speech", logits - 3.0, logits, kind="flags")
    assert as_logits.metrics["decision_agreement"] == 1.0 and as_logits.collapsed


def test_scores_per_anchor_are_judged_by_the_positives_too() -> None:
    """An SSD head's 2016 score logits: nearly all anchors background, so the decisions
    agree even when every detection is lost; the positives' IoU per sample says so."""
    base = np.full((4, 2016, 1), -20.0) + RNG.normal(0, 1, (4, 2016, 1))
    base[:, 100:104] = 5.0
    [held] = judge("classificators", base, base + 0.5)
    assert held.kind == "flags" and not held.collapsed
    assert "decision_agreement" not in held.intervals  # anchors, not samples
    lost = base.copy()
    lost[:, 100:104] = -5.0
    [gone] = judge("classificators", base, lost)
    assert gone.metrics["decision_agreement"] > 0.99
    assert gone.reasons == ["mask IoU per sample 0.000 < 0.5 against the base"]


def _ssd(n: int = 6, anchors: int = 512) -> dict[str, np.ndarray]:
    """An SSD head as MediaPipe's: ``boxes`` ``(n, anchors, 8)`` (a box, two keypoints;
    background anchors' values up to thousands of pixels) and ``scores`` ``(n, anchors,
    1)`` logits, a few anchors of each sample positive."""
    rng = np.random.default_rng(5)
    boxes = rng.normal(0, 1000, (n, anchors, 8))
    scores = rng.normal(-20, 3, (n, anchors, 1))
    for i in range(n):
        sure = rng.choice(anchors, 3, replace=False)
        scores[i, sure] = rng.uniform(1, 4, (3, 1))
        boxes[i, sure] = rng.uniform(20, 80, (3, 8))
    return {"boxes": boxes, "scores": scores}


def test_an_ssd_head_s_boxes_are_judged_on_the_base_s_best_anchors() -> None:
    """The detections' boxes moved by a third: over every anchor, the background's
    thousands of pixels hide it; on the best anchors (the detections and each sample's
    five best), the box part collapses."""
    base = _ssd()
    moved = {k: v.copy() for k, v in base.items()}
    best = np.argsort(-base["scores"][..., 0], axis=1)[:, :5]
    rows = np.arange(len(best))[:, None]
    moved["boxes"][rows, best, :4] *= 1.33
    [flat] = judge("boxes", base["boxes"], moved["boxes"])
    assert not flat.collapsed  # what judging every anchor would say
    box, keypoints, scores = judge_outputs(base, moved)
    assert (box.part, keypoints.part) == (
        "box of the base's best anchors",
        "keypoints of the base's best anchors",
    )
    assert box.collapsed and box.reasons[0].startswith("relative L2")
    assert not keypoints.collapsed and scores.kind == "flags" and not scores.collapsed


def test_flat_landmarks_are_judged_as_points() -> None:
    base = _hand()
    [held] = judge("Identity", base, base + 0.5)
    assert held.kind == "landmarks" and not held.collapsed
    moved = base + np.random.default_rng(3).normal(0, 8, base.shape)
    [lost] = judge("Identity", base, moved)
    assert lost.reasons and lost.reasons[0].startswith("mean |Δ| / spread")


def test_landmarks_are_judged_against_their_spread() -> None:
    base = np.random.default_rng(7).uniform(0, 200, (8, 21, 3))
    [held] = judge("y", base, base + 1.0)
    assert held.kind == "landmarks" and not held.collapsed
    [lost] = judge("y", base, base + 30.0)
    assert lost.reasons and lost.reasons[0].startswith("mean |Δ| / spread")


def test_the_landmark_spread_is_per_coordinate_as_the_error_is() -> None:
    """Points spread 1 along each of 3 axes, each coordinate off by 0.12: 0.12 of the
    spread (a radius over the 3 axes, √3 larger, would make it 0.07 and keep it)."""
    base = np.random.default_rng(9).standard_normal((8, 400, 3))
    [lost] = judge("y", base, base + 0.12)
    spread = float(np.mean(base.std(axis=1)))
    assert lost.metrics["landmark_error"] == pytest.approx(0.12 / spread)
    assert lost.collapsed


def test_boxes_are_judged_by_relative_l2_in_their_own_units() -> None:
    base = np.random.default_rng(8).uniform(0, 320, (8, 4))
    [held] = judge("boxes", base, base + 2.0)
    assert held.metrics["max_abs_diff"] == pytest.approx(2.0)
    assert not held.collapsed
    [lost] = judge("boxes", base, base * 1.5)
    assert lost.reasons[0].startswith("relative L2")


def test_a_map_is_judged_by_cosine_and_mask_iou() -> None:
    base = np.zeros((4, 1, 8, 8))
    base[:, :, 2:6, 2:6] = 0.9
    shifted = np.roll(base, 3, axis=3)
    [verdict] = judge("y", base, shifted)
    assert verdict.kind == "map" and verdict.metrics["mask_iou"] == pytest.approx(1 / 7)
    assert verdict.metrics["sample_mask_iou"] == pytest.approx(1 / 7)
    assert any(r.startswith("mask IoU per sample") for r in verdict.reasons)


def test_a_map_is_judged_sample_by_sample() -> None:
    """Six masks of eight lost, the two kept large: the pooled pixels still pass, the
    samples do not."""
    base = np.zeros((8, 1, 16, 16))
    base[:2, :, :, :] = 0.9  # two large masks
    base[2:, :, 6:9, 6:9] = 0.9  # six small ones
    new = base.copy()
    new[2:] = 0.1  # every pixel of the six small masks falls under 0.5
    [verdict] = judge("y", base, new)
    pooled, per_sample = verdict.metrics["mask_iou"], verdict.metrics["sample_mask_iou"]
    assert pooled is not None and pooled >= 0.5  # the pooled figure would hold
    assert per_sample == pytest.approx(2 / 8) and verdict.collapsed
    assert any(r.startswith("mask IoU per sample 0.250") for r in verdict.reasons)
    [held] = judge("y", base, base * 0.98)
    assert held.metrics["sample_mask_iou"] == 1.0 and not held.collapsed


def probabilities(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_probabilities_squeezed_to_one_value_collapse_though_top1_holds() -> None:
    """PaddleOCR's direction classifier pruned: each row still has the right arg-max, but
    at about 0.5/0.5, so its 0.9 threshold never fires."""
    logits = np.zeros((16, 2))
    logits[np.arange(16), np.arange(16) % 2] = 6.0
    base = probabilities(logits)
    squeezed = probabilities(logits / 60)  # 0.55/0.45 where the base said 0.995/0.005
    [verdict] = judge("softmax", base, squeezed, trained=True)  # fine-tuned: no scale rules
    assert verdict.metrics["top1_agreement"] == 1.0
    spread = verdict.metrics["spread_ratio"]
    assert spread is not None and spread < 0.25 and verdict.collapsed
    assert any(r.startswith("spread over the samples") for r in verdict.reasons)
    [held] = judge("softmax", base, probabilities(logits * 0.8), trained=True)
    assert not held.collapsed
    [logit] = judge("logits", logits, logits / 60, trained=True)  # a logit's scale may move
    assert logit.metrics["spread_ratio"] is None


def test_scores_per_position_are_judged_position_by_position() -> None:
    """A CTC recogniser's softmax ``(N, T, C)``: pruned and fine-tuned, it gave the blank
    on every frame where the base did on half, and as one flat row per sample it had no
    arg-max and no scale-free rule: it "held" on a cosine of 0.44 nobody judged."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 1.0, (8, 40, 12))
    logits[:, ::2, 0] += 8.0  # the blank (class 0) on every other frame
    logits[:, 1::2, 1:] += 8.0 * (rng.random((8, 20, 11)) > 0.9)
    base = probabilities(logits.reshape(-1, 12)).reshape(8, 40, 12)
    blank = np.zeros_like(base)
    blank[..., 0] = 1.0
    [collapsed] = judge("softmax_11.tmp_0", base, blank, "scores", trained=True)
    top1 = collapsed.metrics["top1_agreement"]
    assert top1 is not None and top1 < 0.6 and collapsed.collapsed
    assert any(r.startswith("top-1 agreement") for r in collapsed.reasons)
    faithful = probabilities(0.9 * logits.reshape(-1, 12)).reshape(8, 40, 12)
    [held] = judge("softmax_11.tmp_0", base, faithful, "scores", trained=True)
    assert held.metrics["top1_agreement"] == 1.0 and not held.collapsed


def test_a_trained_output_with_no_scale_free_figure_is_still_judged_by_its_cosine() -> None:
    base = np.random.default_rng(6).normal(0.0, 1.0, 16)  # one score a sample: no arg-max
    [verdict] = judge("score", base, -base, "scores", trained=True)
    assert verdict.metrics["top1_agreement"] is None and verdict.collapsed
    assert any(r.startswith("cosine") for r in verdict.reasons)


def test_a_set_kind_overrides_the_inferred_one() -> None:
    base = {"y": RNG.uniform(0, 1, (8, 1))}
    new = {"y": base["y"] * 1.01}
    [inferred] = judge_outputs(base, new)
    [set_] = judge_outputs(base, new, {"y": "boxes"})
    assert (inferred.kind, inferred.inferred) == ("flags", True)
    assert (set_.kind, set_.inferred) == ("boxes", False)
    with pytest.raises(UsageError, match="not a packed head"):
        judge_outputs(base, new, {"y": "detections"})


def test_a_verdict_round_trips() -> None:
    [verdict] = judge("logits", RNG.standard_normal((8, 10)), RNG.standard_normal((8, 10)))
    assert OutputVerdict.from_dict(verdict.to_dict()) == verdict
    assert verdict.to_dict()["collapsed"] is True


def test_a_share_of_samples_carries_their_count_and_wilson_interval() -> None:
    base = RNG.standard_normal((40, 10))
    new = base.copy()
    new[:3] = -new[:3]  # three samples flip their top-1 class
    [verdict] = judge("logits", base, new)
    agreement = verdict.metrics["top1_agreement"]
    assert verdict.samples == 40 and agreement == 37 / 40
    assert verdict.intervals["top1_agreement"] == wilson(37, 40)
    assert f"top-1 agreement {share_text(37 / 40, 40)}" in verdict.figures()
    assert "cosine" not in verdict.intervals  # not a share of samples
    assert verdict.to_dict()["intervals"]["top1_agreement"] == {
        "low": wilson(37, 40).low,
        "high": wilson(37, 40).high,
    }


def test_the_parts_of_a_packed_head_get_no_interval_over_anchors() -> None:
    base = _packed()
    verdicts = judge("output0", base, base.copy())
    scores = next(v for v in verdicts if v.part == "scores")
    assert scores.metrics["top1_agreement"] == 1.0 and scores.intervals == {}
    assert "n=" not in scores.figures()  # its rows are anchors, not independent samples


# ------------------------------------------------------------------- detections


def test_detection_agreement_is_one_for_identical_detections_and_lower_when_shifted() -> None:
    head = _packed()
    boxes, scores = np.moveaxis(head[:, :4], 1, 2), np.moveaxis(head[:, 4:], 1, 2)
    found = detection.decode(boxes, scores)
    assert sum(len(d) for d in found) > 0
    same = detection.agreement(found, detection.decode(boxes, scores))
    assert (same.f1, same.ap50, same.precision, same.recall) == (1.0, 1.0, 1.0, 1.0)
    moved = boxes.copy()
    moved[:, ::2, 0] += 40  # every other anchor's box 40 px to the right
    shifted = detection.agreement(found, detection.decode(moved, scores))
    assert 0.0 < shifted.f1 < 1.0 and shifted.ap50 < 1.0


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float64)
    assert list(detection.nms(boxes, np.array([0.5, 0.9, 0.7]))) == [1, 2]


# -------------------------------------------------------------- interface, words


def test_a_dtype_change_of_an_input_or_output_is_listed() -> None:
    base = Signature(
        (TensorSpec("x", (1, 3), "float32"),),
        (TensorSpec("y", (1, 2), "float32"), TensorSpec("z", (1,), "float32")),
    )
    new = Signature(
        (TensorSpec("x", (1, 3), "int8"),),
        (TensorSpec("y", (1, 2), "float32"), TensorSpec("z", (1,), "float32")),
    )
    [change] = interface_changes(base, new)
    assert str(change) == "input 'x' changed: float32 1×3 → int8 1×3"
    assert interface_changes(base, base) == []


def test_a_slowdown_reads_as_slower() -> None:
    assert speed_text(2.1) == "2.10× faster"
    assert speed_text(1 / 3.2) == "3.20× slower"
