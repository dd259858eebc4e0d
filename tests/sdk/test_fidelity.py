"""The fidelity figures compress, convert and ab share: pure functions and one result."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.core.errors import UsageError
from edgeship.models.fidelity import (
    Fidelity,
    accuracy,
    class_labels,
    compare,
    correct,
    cosine_rows,
    cosine_similarity,
    max_abs_diff,
    mean_abs_diff,
    rows,
    top1,
    top1_agreement,
)


def test_differences_and_cosine() -> None:
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    assert max_abs_diff(a, a + 0.5) == pytest.approx(0.5)
    assert mean_abs_diff(a, a - 0.25) == pytest.approx(0.25)
    assert max_abs_diff(np.zeros(0), np.zeros(0)) == mean_abs_diff(np.zeros(0), np.zeros(0)) == 0
    assert cosine_similarity(a, 2 * a) == pytest.approx(1.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(np.zeros(3), np.zeros(3)) == 1.0
    assert cosine_similarity(np.zeros(3), np.ones(3)) == 0.0


def test_differences_are_taken_in_float64() -> None:
    big = np.array([16777216.0], np.float32)  # 2**24: float32 cannot hold 2**24 + 1
    assert max_abs_diff(big, np.array([16777217], np.int64)) == 1.0


def test_top1_agreement_only_for_class_scores() -> None:
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert top1_agreement(a, a) == 1.0
    assert top1_agreement(a, a[::-1]) == 0.0
    assert top1_agreement(a[:, None, :, None], a[:, None, :, None]) == 1.0  # (N, 1, C, 1)
    assert top1_agreement(np.ones(4), np.ones(4)) is None  # not class scores
    assert top1_agreement(np.ones((4, 1)), np.ones((4, 1))) is None
    maps = np.zeros((2, 1, 4, 4))  # a probability map: cosine and max |Δ| only
    maps[0, 0, 1, 1] = 1.0
    assert top1_agreement(maps, maps + 1e-6 * np.arange(16).reshape(4, 4)) is None
    assert top1_agreement(np.zeros((2, 5, 7)), np.zeros((2, 5, 7))) is None  # a sequence


def test_top1_agreement_counts_ties_of_the_reference_as_agreeing() -> None:
    ref = np.array([[0.5, 0.5, 0.0], [0.1, 0.9, 0.0]])
    got = np.array([[0.49, 0.51, 0.0], [0.9, 0.1, 0.0]])
    assert top1_agreement(ref, got) == 0.5  # the tie agrees, the flip does not


def test_rows_and_top1_per_sample() -> None:
    out = np.zeros((3, 2, 2))
    out[0, 1, 1] = out[1, 0, 0] = out[2, 0, 1] = 1.0
    assert rows(out).shape == (3, 4) and rows(out).dtype == np.float64
    assert list(top1(out)) == [3, 0, 1]
    with pytest.raises(UsageError, match="scalar"):
        rows(np.float32(1.0))


def test_cosine_of_zero_rows() -> None:
    a = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    assert list(cosine_rows(a, b)) == [1.0, 0.0, -1.0]


def test_accuracy_with_index_and_one_hot_labels() -> None:
    logits = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] * 5.0
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1, 0])
    assert correct(logits, labels) == 8
    assert accuracy(logits, labels) == 0.8
    assert accuracy(logits, np.eye(4)[labels]) == 0.8
    assert accuracy(logits, None) is None


def test_bad_labels() -> None:
    with pytest.raises(UsageError, match="3 labels but the model gave 4 outputs"):
        class_labels(np.array([0, 1, 2]), 4)
    with pytest.raises(UsageError, match="class indices"):
        class_labels(np.array([0.5, 1.0]), 2)


def test_compare_gives_every_figure() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 10))
    labels = np.argmax(base, axis=1)
    noisy = base + rng.normal(0, 0.5, base.shape)
    fid = compare(base, noisy, labels)
    assert fid.samples == 50 and fid.base_accuracy == 1.0
    assert fid.accuracy == fid.top1_agreement and fid.accuracy is not None and fid.accuracy < 1
    assert fid.max_abs_diff == pytest.approx(float(np.max(np.abs(base - noisy))))
    assert fid.mean_abs_diff < fid.max_abs_diff and fid.cosine is not None and fid.cosine < 1
    assert fid.accuracy_drop_pt == pytest.approx(100 * (1 - fid.accuracy))
    assert compare(base, base).accuracy is None and compare(base, base).top1_agreement == 1.0
    with pytest.raises(UsageError, match="differ"):
        compare(base, base[:, :5])


def test_fidelity_json_round_trip() -> None:
    fid = Fidelity(10, 0.9, 1.5, 0.1, accuracy=0.8, base_accuracy=0.85, cosine=0.99)
    data = fid.to_dict()
    assert data["accuracy_drop_pt"] == pytest.approx(5.0)
    assert Fidelity.from_dict(data) == fid
    assert Fidelity.from_dict({**data, "top1_agreement": None}).top1_agreement is None
