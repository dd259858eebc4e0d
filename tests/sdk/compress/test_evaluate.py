"""compress's batch-1 latency: rounds sized by time as well as by runs."""

from __future__ import annotations

from typing import Any

import pytest

from edgeship.compress import _evaluate as evaluate
from edgeship.targets.local import LocalTarget
from edgeship_runtime.report import ProfileReport
from tools.zoo.build import Manifest


class WindowTarget(LocalTarget):
    """The local target, keeping each profile's timed window: (runs, ms of timed running)."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[tuple[int, float]] = []

    def profile(self, *args: Any, **kwargs: Any) -> ProfileReport:
        report = super().profile(*args, **kwargs)
        self.windows.append((report.latency_ms.n, report.latency_ms.n * report.latency_ms.mean))
        return report


@pytest.mark.latency_budget
def test_a_round_times_each_model_for_its_seconds_not_only_its_runs(zoo: Manifest) -> None:
    """The MLP runs in well under a millisecond: 5 runs are a few ms of timing; with 0.1 s
    asked each of the 4 windows (a discarded round and a kept one, two models) lasts it."""
    mlp = zoo.path("mlp.onnx")
    with WindowTarget() as target:
        evaluate.latency(mlp, mlp, target, rounds=1, runs=5, min_seconds=0.1)
        timed, target.windows = target.windows, []
        evaluate.latency(mlp, mlp, target, rounds=1, runs=5)
        counted = target.windows
    assert len(timed) == len(counted) == 4
    assert all(ms >= 100.0 and runs > 5 for runs, ms in timed)
    assert all(runs == 5 for runs, _ in counted)
