"""The sweep's one-line views: a cell's shares said with their interval and sample count."""

from __future__ import annotations

from edgeship.models.estimate import wilson
from edgeship.sweep.view import describe
from tests.sdk.sweep import fakes


def test_a_cell_says_accuracy_against_labels_with_its_interval_and_n() -> None:
    ci = wilson(522, 540)
    result = fakes.result(2.0, accuracy=522 / 540)
    result.samples, result.accuracy_ci = 540, ci
    assert "accuracy vs labels 96.7 % [94.8, 97.9] n=540" in describe(result)
    unlabelled = fakes.result(2.0)
    unlabelled.top1_agreement, unlabelled.samples = 1.0, 51
    unlabelled.top1_agreement_ci = wilson(51, 51)
    assert describe(unlabelled).endswith("top-1 agreement vs base 100 % [93.0, 100] n=51")
