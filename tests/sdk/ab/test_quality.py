"""Quality from outputs: accuracy with a Wilson interval, agreement with the base."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.ab._analyze import analyze
from edgeship.ab._quality import accuracy, agreement, class_labels, cosine_rows, top1, verdicts
from edgeship.ab._report_md import outputs_section
from edgeship.ab.stats import StatsPolicy
from edgeship.core.errors import UsageError
from tests.sdk.ab import fakes


def test_accuracy_from_logits_and_labels() -> None:
    logits = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] * 5.0
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1, 0])
    result = accuracy(logits, labels)
    assert result.accuracy == 0.8 and result.n == 10
    assert result.ci.low < 0.8 < result.ci.high
    onehot = np.eye(4)[labels]
    assert accuracy(logits, onehot).accuracy == 0.8


def test_outputs_with_trailing_dims_are_flattened_per_sample() -> None:
    out = np.zeros((3, 2, 2))
    out[0, 1, 1] = out[1, 0, 0] = out[2, 0, 1] = 1.0
    assert list(top1(out)) == [3, 0, 1]


def test_bad_labels() -> None:
    with pytest.raises(UsageError, match="3 labels but the model gave 4 outputs"):
        class_labels(np.array([0, 1, 2]), 4)
    with pytest.raises(UsageError, match="class indices"):
        class_labels(np.array([0.5, 1.0]), 2)


def test_agreement_against_the_base() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(100, 10)).astype(np.float32)
    same = agreement(base, base.copy())
    assert same is not None
    assert same.top1 == 1.0 and same.max_abs_diff == 0.0
    assert same.cosine_mean == pytest.approx(1.0) and same.n == 100
    noisy = base + rng.normal(0, 0.5, base.shape).astype(np.float32)
    other = agreement(base, noisy)
    assert other is not None
    assert 0.5 < other.top1 < 1.0 and other.top1_ci.low < other.top1 < other.top1_ci.high
    assert other.max_abs_diff == pytest.approx(float(np.max(np.abs(base - noisy))), rel=1e-6)
    assert other.cosine_min < other.cosine_mean < 1.0


def test_agreement_of_incomparable_outputs_is_none() -> None:
    assert agreement(np.zeros((5, 10)), np.zeros((5, 3))) is None


def test_cosine_of_zero_rows() -> None:
    a = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    assert list(cosine_rows(a, b)) == [1.0, 0.0, -1.0]


def test_every_output_is_judged_by_its_kind() -> None:
    """The first output holds; the second (a mask) is all zeros in the variant."""
    rng = np.random.default_rng(1)
    base = {
        "logits": rng.normal(size=(40, 10)).astype(np.float32),
        "mask": rng.uniform(0, 1, (40, 1, 8, 8)).astype(np.float32),
    }
    variant = {"logits": base["logits"] + 0.01, "mask": np.zeros_like(base["mask"])}
    logits, mask = verdicts(base, variant)
    assert (logits.kind, logits.collapsed) == ("scores", False)
    assert mask.kind == "map" and "all zeros over the 40 samples" in mask.reasons[0]
    assert mask.line().startswith("output 'mask' [map, inferred] vs base: cosine")
    assert verdicts(base, {**variant, "mask": variant["mask"][:, :, :4]}) == []  # other shapes


def test_an_ab_report_judges_and_shows_every_output() -> None:
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(30, 5)).astype(np.float32)
    mask = rng.uniform(0, 1, (30, 1, 8, 8)).astype(np.float32)
    runs = [
        fakes.model_run("base", fakes.latencies(rng, 10.0), "base", outputs=scores),
        fakes.model_run("int8", fakes.latencies(rng, 8.0), outputs=scores + 0.01),
    ]
    runs[0].named_outputs = {"scores": scores, "mask": mask}
    runs[1].named_outputs = {"scores": scores + 0.01, "mask": np.zeros_like(mask)}
    device = analyze(fakes.device_run("pi", runs), StatsPolicy())
    [comparison] = device.comparisons
    assert comparison.agreement is not None
    assert [v.collapsed for v in comparison.agreement.outputs] == [False, True]
    text = "\n".join(outputs_section(device))
    assert "- int8: output 'mask' [map, inferred] vs base:" in text
    assert "COLLAPSED: all zeros" in text
