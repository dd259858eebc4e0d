"""Every output judged for what it is: its kind, its figures, its collapse rule.

A model's outputs are not one flat tensor: a detector packs boxes in pixels beside class
scores in [0, 1], a hand-landmark model gives points, world points and a handedness
flag. Judged as one tensor by its cosine, a detector whose class scores all rounded to 0
still scores 0.999 (the boxes dominate the norm). So each output gets a kind
(:data:`KINDS`), inferred from its name, shape and values (:func:`infer_kind`) or set by
the user, figures of that kind (:mod:`.fidelity`, :mod:`.detection`) and a verdict
(:class:`OutputVerdict`) by that kind's rules at :class:`Limits`. A packed YOLO-style
head (:func:`packed_axis`) is split into its ``boxes`` and ``scores`` parts, each judged
by its kind, plus its ``detections``: the task figure (:func:`~.detection.agreement`).

Whatever the kind, an output (or part) is collapsed when its values are no longer finite
or when it is constant over the samples (all zeros included) where the base's varies.
Pure functions on arrays; the first axis is the samples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from edgeship.core.errors import UsageError
from edgeship.models import detection
from edgeship.models import fidelity as fig
from edgeship.models.estimate import Interval, share_interval, share_text

__all__ = [
    "KINDS",
    "SHARES",
    "Limits",
    "OutputVerdict",
    "figure_label",
    "infer_kind",
    "judge",
    "judge_outputs",
    "packed_axis",
    "parse_kinds",
    "split_packed",
    "worst",
]

KINDS = ("scores", "boxes", "map", "embedding", "landmarks", "flags", "detections", "tensor")
"""Class scores or probabilities; boxes and other regressions; maps and masks;
embeddings; landmarks; flags (presence, handedness); a packed detection head; any other
tensor (cosine only)."""

_NAMED = (  # a name says more than a shape: ``(N, 4)`` is boxes or 4 class scores
    ("landmarks", r"landmark|keypoint|kpt|pose"),
    ("flags", r"handed|presence|flag|visib|is_"),
    ("embedding", r"embed|descriptor|feature|feat\b"),
    ("boxes", r"box|bbox|regress|loc\b|offset"),
    ("map", r"mask|seg|heatmap|depth|density"),
    ("scores", r"logit|prob|class|cls|softmax"),
    ("tensor", r"state|hidden|^[hc]n$|^[hc]_?out"),  # a recurrent state: no class leads
)

BOX_ROWS = 4
CONFIDENT = detection.SCORE_THRESHOLD
"""A packed head's anchors whose best base score is below this are background; their
arg-max flips on noise that changes no detection, so top-1 agreement skips them."""


@dataclass(frozen=True)
class Limits:
    """Where each kind's figures count as a collapse (fractions in [0, 1] unless said).

    ``max_relative_error``: class scores' mean |Δ| over the base's mean |output| (logits
    100× off keep their arg-max, not their meaning); ``max_box_error``: boxes' relative
    L2; ``max_landmark_error``: landmarks' mean |Δ| over their spread; ``min_spread``:
    class probabilities' spread over the samples against the base's (squeezed towards
    one value, they keep their top-1 but no threshold fires); ``min_mask_iou``
    holds for a map's mean over the samples of each sample's mask IoU (the worst sample's,
    or each sample's cosine, would refuse a result for a near-empty map's noisy pixels).
    """

    min_cosine: float = 0.9
    min_top1: float = 0.7
    min_spread: float = 0.25
    max_relative_error: float = 1.0
    max_box_error: float = 0.1
    min_mask_iou: float = 0.5
    min_row_cosine: float = 0.9
    min_nn_agreement: float = 0.7
    max_landmark_error: float = 0.1
    min_decision_agreement: float = 0.9
    max_probability_error: float = 0.1
    min_detection_ap50: float = 0.75

    def __post_init__(self) -> None:
        if not -1.0 <= self.min_cosine <= 1.0 or not -1.0 <= self.min_row_cosine <= 1.0:
            raise UsageError("min_cosine and min_row_cosine must lie in [-1, 1]")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("max_") and value < 0:
                raise UsageError(f"{f.name} must be >= 0, got {value}")
            if f.name.startswith("min_") and "cosine" not in f.name and not 0 <= value <= 1:
                raise UsageError(f"{f.name} must lie in [0, 1], got {value}")


@dataclass(frozen=True)
class _Rule:
    figure: str
    limit: str  # a field of Limits: min_* a floor, max_* a ceiling
    scale_bound: bool = False  # judges the scale of class scores: not for a trained model


_RULES: dict[str, tuple[_Rule, ...]] = {
    "scores": (
        _Rule("top1_agreement", "min_top1"),
        _Rule("spread_ratio", "min_spread"),
        _Rule("relative_error", "max_relative_error", scale_bound=True),
        _Rule("cosine", "min_cosine", scale_bound=True),
    ),
    "boxes": (_Rule("relative_l2", "max_box_error"),),
    "map": (_Rule("cosine", "min_cosine"), _Rule("sample_mask_iou", "min_mask_iou")),
    "embedding": (
        _Rule("row_cosine", "min_row_cosine"),
        _Rule("nn_agreement", "min_nn_agreement"),
    ),
    "landmarks": (_Rule("landmark_error", "max_landmark_error"),),
    "flags": (
        _Rule("decision_agreement", "min_decision_agreement"),
        _Rule("probability_error", "max_probability_error"),
        _Rule("sample_mask_iou", "min_mask_iou"),
    ),
    "detections": (_Rule("detection_ap50", "min_detection_ap50"),),
    "tensor": (_Rule("cosine", "min_cosine"),),
}

_LABELS = {
    "top1_agreement": ("top-1 agreement", "{:.1%}"),
    "topk_agreement": ("top-k agreement", "{:.1%}"),
    "kl_divergence": ("KL", "{:.4g}"),
    "spread_ratio": ("spread over the samples / the base's", "{:.3g}"),
    "relative_error": ("mean |Δ| / the base's mean |output|", "{:.3g}"),
    "cosine": ("cosine", "{:.4f}"),
    "relative_l2": ("relative L2", "{:.4f}"),
    "max_abs_diff": ("max |Δ|", "{:.4g}"),
    "mask_iou": ("mask IoU", "{:.3f}"),
    "sample_mask_iou": ("mask IoU per sample", "{:.3f}"),
    "row_cosine": ("mean row cosine", "{:.4f}"),
    "nn_agreement": ("nearest-neighbour agreement", "{:.1%}"),
    "landmark_error": ("mean |Δ| / spread", "{:.4f}"),
    "decision_agreement": ("decision agreement", "{:.1%}"),
    "probability_error": ("mean |Δ| of the probability", "{:.3g}"),
    "detection_f1": ("detection F1", "{:.1%}"),
    "detection_ap50": ("AP50 against the base", "{:.1%}"),
    "base_detections": ("base detections", "{:.0f}"),
    "lowest_threshold": ("lowest score threshold of a sample", "{:.3g}"),
}


SHARES = frozenset({"top1_agreement", "topk_agreement", "nn_agreement"})
"""Figures that are a share of the samples (each agrees or not): given with their sample
count and Wilson interval where the samples are the rows (not a packed head's anchors).
A flag's ``decision_agreement`` is one too where it made one decision a sample (not one
per anchor)."""


@dataclass
class OutputVerdict:
    """One output (or one ``part`` of a packed one) against the base's: its ``kind``
    (``inferred``, or set by the user), its figures (``metrics``, by name; None where a
    figure is not defined), what collapsed (``reasons``; none: it holds) and ``health``,
    the least of its figures over their limits (below 1: a rule failed; 0: broken).
    ``samples``: the rows compared (0 in reports written before it was recorded); the
    :data:`SHARES` among the figures of a whole output have an interval of them."""

    output: str
    kind: str
    inferred: bool
    metrics: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    health: float = 1.0
    part: str = ""
    samples: int = 0

    @property
    def intervals(self) -> dict[str, Interval]:
        """The Wilson interval (95 %) of each share figure over the samples."""
        if self.part:
            return {}
        one_each = self.metrics.get("decisions") == self.samples
        found = {
            k: share_interval(v, self.samples)
            for k, v in self.metrics.items()
            if k in SHARES or (k == "decision_agreement" and one_each)
        }
        return {k: ci for k, ci in found.items() if ci is not None}

    @property
    def collapsed(self) -> bool:
        return bool(self.reasons)

    @property
    def label(self) -> str:
        return f"{self.output!r}" + (f" ({self.part})" if self.part else "")

    def figures(self) -> str:
        """``top-1 agreement 98.0 % [93.0, 99.4] n=100, cosine 0.9990, ...``: the figures
        that are defined, a share with its interval and sample count."""
        intervals = self.intervals
        shown = [
            f"{_LABELS[k][0]} "
            + (
                share_text(v, self.samples, intervals[k])
                if k in intervals
                else _LABELS[k][1].format(v)
            )
            for k, v in self.metrics.items()
            if v is not None and k in _LABELS
        ]
        return ", ".join(shown)

    def line(self) -> str:
        """``output 'y' [scores, inferred] vs base: top-1 agreement 98.0 % [93.0, 99.4]
        n=100, ... — holds``."""
        how = "inferred" if self.inferred else "set"
        state = f"COLLAPSED: {'; '.join(self.reasons)}" if self.collapsed else "holds"
        return f"output {self.label} [{self.kind}, {how}] vs base: {self.figures()} — {state}"

    def to_dict(self) -> dict[str, Any]:
        intervals = {k: asdict(ci) for k, ci in self.intervals.items()}
        return {**asdict(self), "collapsed": self.collapsed, "intervals": intervals}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputVerdict:
        return cls(
            output=str(data["output"]),
            kind=str(data["kind"]),
            inferred=bool(data["inferred"]),
            metrics={k: None if v is None else float(v) for k, v in data["metrics"].items()},
            reasons=[str(r) for r in data.get("reasons", [])],
            health=float(data.get("health", 1.0)),
            part=str(data.get("part", "")),
            samples=int(data.get("samples", 0)),
        )


def figure_label(figure: str) -> str:
    """How a figure is named in a report (``top1_agreement``: ``top-1 agreement``)."""
    return _LABELS[figure][0] if figure in _LABELS else figure.replace("_", " ")


def parse_kinds(specs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["out=embedding", ...]`` (``--output-kind``) as ``{"out": "embedding"}``."""
    kinds: dict[str, str] = {}
    for spec in specs:
        name, sep, kind = spec.rpartition("=")
        if not sep or not name:
            raise UsageError(f"--output-kind wants NAME=KIND, got {spec!r}")
        kinds[name] = check_kind(kind, name)
    return kinds


def check_kind(kind: str, output: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"output {output!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return kind


def packed_axis(values: np.ndarray) -> int | None:
    """The channel axis of a packed YOLO-style head ``(B, 4+C, N)`` or ``(B, N, 4+C)``:
    more anchors than channels, the first 4 channels coordinates reaching beyond [0, 1]
    and the rest in [0, 1]; None for anything else."""
    a = np.asarray(values)
    if a.ndim != 3 or not a.size:
        return None
    for axis in (1, 2):
        channels, anchors = a.shape[axis], a.shape[3 - axis]
        if channels <= BOX_ROWS or anchors <= channels:
            continue
        rows = np.moveaxis(a, axis, -1)
        boxes, scores = rows[..., :BOX_ROWS], rows[..., BOX_ROWS:]
        wide = float(np.max(np.abs(boxes))) > 1.5
        if wide and scores.min() >= 0.0 and scores.max() <= 1.0:
            return axis
    return None


MIN_ANCHORS = 64
"""An ``(N, A, 1)`` output with this many rows or more is a score per anchor."""
STEP_RATIO = 0.7
"""Values three apart closer than neighbours by this factor: points of x, y, z."""


def _anchor_rows(anchors: int, width: int) -> bool:
    """``(A, K)`` rows of an SSD box head: many anchors, each an even number of
    coordinates (a box, then keypoints as x, y pairs: MediaPipe's 16 and 18)."""
    return 4 <= width <= 32 and width % 2 == 0 and anchors >= max(MIN_ANCHORS, 16 * width)


def _flat_points(values: np.ndarray) -> bool:
    """Whether flat rows ``(N, 3K)`` are K points of x, y, z (MediaPipe's hand, face and
    iris landmarks, ``[1, 63]``): the same coordinate of neighbouring points (three
    values apart) lies much closer than a point's x to its y, where class logits or an
    embedding differ as much at every step. Probabilities are never points."""
    r = fig.rows(values).astype(np.float64)
    if r.shape[1] < 15 or r.shape[1] % 3 or fig.is_probabilities(r):
        return False
    near = float(np.mean(np.abs(np.diff(r, axis=1))))
    step = float(np.mean(np.abs(r[:, 3:] - r[:, :-3])))
    return near > 0 and step < STEP_RATIO * near


def split_packed(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """A packed head as its boxes ``(B, N, 4)`` and scores ``(B, N, C)``."""
    rows = np.moveaxis(np.asarray(values), axis, -1)
    return rows[..., :BOX_ROWS], rows[..., BOX_ROWS:]


def infer_kind(name: str, values: np.ndarray) -> str:
    """The kind of output ``name`` from its values ``(N, ...)``: a packed head, else one
    decision per anchor, else what its name says, else what its shape and values say."""
    a = np.asarray(values)
    if packed_axis(a) is not None:
        return "detections"
    if a.ndim == 3 and a.shape[2] == 1 and a.shape[1] >= MIN_ANCHORS:
        return "flags"  # an SSD head's score per anchor, whatever its name ("classificators")
    wide = [d for d in a.shape[1:] if d != 1]
    for kind, pattern in _NAMED:
        if re.search(pattern, name.lower()):
            # one value a sample has no classes to rank: a probability or logit is a
            # decision (Silero's ``speech_probs`` ``[N]``, judged as scores, held on a
            # cosine while its probabilities moved by 0.11)
            return "flags" if kind == "scores" and not wide else kind
    if a.ndim == 3 and _anchor_rows(a.shape[1], a.shape[2]):
        return "boxes"
    if not wide:  # one value per sample
        return "flags" if a.size and a.min() >= 0.0 and a.max() <= 1.0 else "boxes"
    if len(wide) == 1 and wide[0] >= 2:
        norms = np.linalg.norm(fig.rows(a), axis=1)
        if np.allclose(norms, 1.0, atol=1e-3):
            return "embedding"
        return "landmarks" if _flat_points(a) else "scores"
    if len(wide) == 2 and wide[-1] in (2, 3) and wide[0] >= 4:
        return "landmarks"
    if len(wide) >= 2 and min(wide[-2:]) >= 4:
        return "map"
    return "tensor"


def judge_outputs(
    base: Mapping[str, np.ndarray],
    new: Mapping[str, np.ndarray],
    kinds: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    trained: bool = False,
) -> list[OutputVerdict]:
    """A verdict per output of ``base`` (by name; by position when the names differ, as a
    converted model may rename them), per part of a packed one; ``kinds`` set by the user."""
    kinds, limits = dict(kinds or {}), limits or Limits()
    unknown = set(kinds) - set(base)
    if unknown:
        raise UsageError(
            f"--output-kind names {sorted(unknown)}, not outputs of the model ({list(base)})"
        )
    same = set(new) == set(base)
    paired = [new[n] for n in base] if same else list(new.values())[: len(base)]
    sure = _sure_anchors(base, kinds)
    verdicts: list[OutputVerdict] = []
    for (name, ref), got in zip(base.items(), paired, strict=False):
        if name not in sure:
            verdicts += judge(name, ref, got, kinds.get(name), limits, trained)
            continue
        rows = sure[name]
        ref_rows, got_rows = _rows_of(ref)[rows], _rows_of(got)[rows]
        parts = [("box", slice(0, BOX_ROWS)), ("keypoints", slice(BOX_ROWS, None))]
        for part, cols in parts[: 2 if ref_rows.shape[1] > BOX_ROWS else 1]:
            for v in judge(name, ref_rows[:, cols], got_rows[:, cols], "boxes", limits, trained):
                v.part, v.inferred = f"{part} of {SURE}", name not in kinds
                verdicts.append(v)
    return verdicts


SURE = "the base's best anchors"
BEST = 5
"""Anchors of each sample whose boxes are judged even below the decision."""


def _sure_anchors(
    base: Mapping[str, np.ndarray], kinds: Mapping[str, str]
) -> dict[str, np.ndarray]:
    """An SSD head's box output (``(N, A, K)`` boxes beside an ``(N, A, 1)`` score per
    anchor): the rows of its ``N·A`` anchors that are a sample's detections (the base's
    score passes its decision) or among its :data:`BEST` (what a lower threshold would
    show), by output name. Judged over every anchor, the background's meaningless boxes
    (MediaPipe's reach 4000 pixels) drown the error of the few that are detections: a
    palm detector half of whose best boxes moved kept a relative L2 of 0.05. Each row's
    box (its first 4 values) and keypoints (the rest) are judged apart: 14 keypoint
    offsets would drown a box's 4."""
    kind = {n: kinds.get(n) or infer_kind(n, v) for n, v in base.items()}
    scores = [
        np.asarray(v).reshape(-1)
        for n, v in base.items()
        if kind[n] == "flags" and np.ndim(v) == 3 and np.shape(v)[2] == 1
    ]
    found: dict[str, np.ndarray] = {}
    for name, values in base.items():
        a = np.asarray(values)
        match = [s for s in scores if a.ndim == 3 and s.size == a.shape[0] * a.shape[1]]
        if kind[name] == "boxes" and match:
            s = match[0].reshape(a.shape[0], a.shape[1])
            sure = s > fig.decision_threshold(s)
            best = np.argsort(-s, axis=1)[:, :BEST]
            sure[np.arange(len(s))[:, None], best] = True
            found[name] = sure.reshape(-1)
    return found


def _rows_of(a: np.ndarray) -> np.ndarray:
    """``(N, A, K)`` as ``(N·A, K)``: one row per anchor."""
    return np.asarray(a).reshape(-1, np.shape(a)[-1])


def judge(
    name: str,
    base: np.ndarray,
    new: np.ndarray,
    kind: str | None = None,
    limits: Limits | None = None,
    trained: bool = False,
) -> list[OutputVerdict]:
    """The verdicts of output ``name``: one, or its parts' for a packed head. ``kind``:
    set by the user (None: inferred); ``trained``: the method trained the result
    (fine-tuning, distillation), whose class scores may legitimately change scale."""
    limits = limits or Limits()
    ref, got = np.asarray(base), np.asarray(new)
    if ref.shape != got.shape:
        raise UsageError(f"output {name!r}: shapes {list(got.shape)} and {list(ref.shape)} differ")
    inferred = kind is None
    kind = infer_kind(name, ref) if kind is None else check_kind(kind, name)
    if kind != "detections":
        return [_verdict(name, "", kind, inferred, ref, got, limits, trained)]
    axis = packed_axis(ref)
    if axis is None:
        raise UsageError(
            f"output {name!r} of shape {list(ref.shape)} is not a packed head "
            "(B, 4+C, N) or (B, N, 4+C) with coordinates then scores in [0, 1]"
        )
    (ref_boxes, ref_scores), (got_boxes, got_scores) = (
        split_packed(ref, axis),
        split_packed(got, axis),
    )
    sure = _confident(ref_scores)
    ref_rows, got_rows = (s.reshape(-1, s.shape[-1])[sure] for s in (ref_scores, got_scores))
    metrics = _detection_metrics(ref_boxes, ref_scores, got_boxes, got_scores)
    return [
        _verdict(name, "boxes", "boxes", inferred, ref_boxes, got_boxes, limits, trained),
        _verdict(name, "scores", "scores", inferred, ref_rows, got_rows, limits, trained),
        _ruled(
            OutputVerdict(
                name, "detections", inferred, metrics, part="detections", samples=len(ref)
            ),
            limits,
            trained,
        ),
    ]


def _detection_metrics(
    ref_boxes: np.ndarray, ref_scores: np.ndarray, got_boxes: np.ndarray, got_scores: np.ndarray
) -> dict[str, float | None]:
    """The detections' agreement, each sample at its threshold
    (:func:`~.detection.sample_thresholds`): F1 with both sides decoded there; AP50 with
    the variant's decoded at half of it and ranked by score, so that a detection on the
    threshold that the variant scores a little lower still counts, ranked last."""
    floor = detection.decode(ref_boxes, ref_scores, detection.FLOOR)
    limits = detection.thresholds_of(floor)
    base = [d.at_least(t) for d, t in zip(floor, limits, strict=True)]
    loose = detection.decode(got_boxes, got_scores, limits / 2)
    task = detection.agreement(base, [d.at_least(t) for d, t in zip(loose, limits, strict=True)])
    ranked = detection.agreement(base, loose)
    found = task.base + task.variant > 0  # no detection on either side: nothing to agree on
    return {
        "detection_f1": task.f1 if found else None,
        "detection_ap50": ranked.ap50 if found else None,
        "base_detections": float(task.base),
        "variant_detections": float(task.variant),
        "lowest_threshold": float(limits.min()),
    }


def _confident(scores: np.ndarray) -> np.ndarray:
    """The anchors (rows of ``scores`` ``(B, N, C)`` flattened to ``(B·N, C)``) the base
    is sure of; in a sample where it is sure of none, its :data:`SUREST` best: the ones a
    lower threshold would make detections first. The others are background, scores near
    0 whose arg-max and relative error are noise (NudeNet's detector on photographs with
    nothing it detects: top-1 agreement 12 % over every anchor of a faithful INT8)."""
    best = scores.max(axis=-1).reshape(len(scores), -1)
    sure = best >= CONFIDENT
    for i in np.flatnonzero(~sure.any(axis=1)):
        sure[i, np.argsort(-best[i], kind="stable")[:SUREST]] = True
    return sure.reshape(-1)


SUREST = 5
"""Anchors judged in a sample where the base is sure of none."""


def _verdict(
    name: str,
    part: str,
    kind: str,
    inferred: bool,
    ref: np.ndarray,
    got: np.ndarray,
    limits: Limits,
    trained: bool,
) -> OutputVerdict:
    figures = _figures(kind, ref, got)
    verdict = _ruled(
        OutputVerdict(name, kind, inferred, figures, part=part, samples=len(ref)), limits, trained
    )
    broken = _broken(ref, got)
    if broken:
        verdict.reasons.insert(0, broken)
        verdict.health = 0.0
    return verdict


def _ruled(verdict: OutputVerdict, limits: Limits, trained: bool) -> OutputVerdict:
    """``verdict`` with the reasons and health from its kind's rules."""
    ratios = []
    rules = _RULES[verdict.kind]
    # a trained model's scale may change, but not with nothing else left to judge it by
    scale_free = [
        r for r in rules if not r.scale_bound and verdict.metrics.get(r.figure) is not None
    ]
    for rule in rules:
        value = verdict.metrics.get(rule.figure)
        if value is None or (trained and rule.scale_bound and scale_free):
            continue
        bound = getattr(limits, rule.limit)
        floor = rule.limit.startswith("min_")
        ratios.append(_ratio(value, bound, floor))
        if (value < bound) if floor else (value > bound):
            label, form = _LABELS[rule.figure]
            shown = form.format(bound) if "%" in form else f"{bound:g}"
            verdict.reasons.append(
                f"{label} {form.format(value)} {'<' if floor else '>'} {shown} against the base"
            )
    verdict.health = min(ratios, default=1.0)
    return verdict


def _ratio(value: float, bound: float, floor: bool) -> float:
    """How far ``value`` is inside its bound: 1 on it, below 1 past it."""
    if floor:
        return value / bound if bound > 0 else (1.0 if value >= bound else 0.0)
    return bound / value if value > 0 else float("inf")


def _broken(ref: np.ndarray, got: np.ndarray) -> str:
    """What no kind survives: values no longer finite, or constant where the base's vary."""
    if np.isfinite(ref).all() and not np.isfinite(got).all():
        return "NaN/inf values"
    if len(got) > 1 and _constant(got) and not _constant(ref):
        what = "all zeros" if not np.any(got) else "constant"
        return f"{what} over the {len(got)} samples (the base's varies)"
    return ""


def _constant(a: np.ndarray) -> bool:
    flat = a.reshape(len(a), -1)
    return bool(np.all(flat == flat[:1]))


def _figures(kind: str, ref: np.ndarray, got: np.ndarray) -> dict[str, float | None]:
    """The figures of ``kind`` (and max |Δ| in the output's own units, for every kind)."""
    out: dict[str, float | None] = {}
    if kind == "scores":
        scale = float(np.mean(np.abs(ref))) if ref.size else 0.0
        ref_c, got_c = _class_rows(ref), _class_rows(got)
        probabilities = fig.is_probabilities(ref_c)
        out = {
            "top1_agreement": fig.top1_agreement(ref_c, got_c),
            "topk_agreement": fig.topk_agreement(ref_c, got_c),
            "kl_divergence": fig.kl_divergence(ref_c, got_c) if probabilities else None,
            "spread_ratio": fig.spread_ratio(ref_c, got_c) if probabilities else None,
            "cosine": fig.cosine_similarity(ref, got),
            "relative_error": fig.mean_abs_diff(ref, got) / scale if scale > 0 else None,
        }
    elif kind == "boxes":
        out = {"relative_l2": fig.relative_l2(ref, got)}
    elif kind == "map":
        out = {  # masks lost on a few samples hide in the pooled pixels of the others
            "cosine": fig.cosine_similarity(ref, got),
            "mask_iou": fig.mask_iou(ref, got),
            "sample_mask_iou": float(np.mean(fig.mask_ious(ref, got))) if len(ref) else None,
        }
    elif kind == "embedding":
        row = fig.cosine_rows(fig.rows(ref), fig.rows(got))
        out = {"row_cosine": float(np.mean(row)), "nn_agreement": fig.nn_agreement(ref, got)}
    elif kind == "landmarks":
        points = _points(ref)
        out = {"landmark_error": fig.landmark_error(ref.reshape(points), got.reshape(points))}
    elif kind == "flags":  # several per sample (one per anchor): the few positives too
        several = ref.ndim > 1 and int(np.prod(ref.shape[1:])) > 1
        out = {
            "decision_agreement": fig.decision_agreement(ref, got),
            "decisions": float(ref.size),
            "probability_error": fig.probability_error(ref, got),
            "sample_mask_iou": float(np.mean(fig.mask_ious(ref, got))) if several else None,
        }
    else:
        out = {"cosine": fig.cosine_similarity(ref, got)}
    return {**out, "max_abs_diff": fig.max_abs_diff(ref, got)}


def _class_rows(a: np.ndarray) -> np.ndarray:
    """Class scores as ``(rows, classes)``: a sample's one row, or for scores per position
    (``(N, T, C)``: a recogniser's frames, a language model's tokens) one row per position,
    classes on the last axis. Judged as one flat row per sample they have no arg-max, and a
    recogniser that gives the CTC blank on every frame kept its "cosine" alone (PaddleOCR's,
    pruned and fine-tuned, which no scale-free rule then judged)."""
    if fig.is_class_scores(a.shape) or a.ndim < 3 or a.shape[-1] < 2:
        return a
    return a.reshape(-1, a.shape[-1])


def _points(a: np.ndarray) -> tuple[int, int, int]:
    """``a``'s shape as ``(N, K, D)`` points: D the last axis when it is 2 or 3, else 3
    (or 2) coordinates per point when the sample's values divide so (MediaPipe's 63)."""
    per = int(np.prod(a.shape[1:]))
    dims = a.shape[-1] if a.ndim > 2 and a.shape[-1] in (2, 3) else (3 if per % 3 == 0 else 2)
    dims = dims if per % dims == 0 else 1
    return (a.shape[0], per // dims, dims)


def worst(verdicts: list[OutputVerdict]) -> OutputVerdict | None:
    """The verdict with the least health (a collapse before any that holds)."""
    return min(verdicts, key=lambda v: v.health, default=None)
