"""Rollout phases and policies, without devices."""

from __future__ import annotations

import pytest

from edgeship.core.config import HealthPolicy
from edgeship.core.errors import UsageError
from edgeship.rollout import RolloutPlan, phase_sizes


def test_phase_sizes() -> None:
    assert phase_sizes(["1", "25%", "100%"], 8) == [1, 2, 8]
    assert phase_sizes(["100%"], 3) == [3]
    assert phase_sizes(["1", "3"], 3) == [1, 3]
    for bad in (["1", "1", "100%"], ["50%"], ["0", "100%"], ["five", "100%"], []):
        with pytest.raises(UsageError):
            phase_sizes(bad, 4)


def test_policies_refuse_nonsense() -> None:
    with pytest.raises(UsageError, match="--max-failures"):
        RolloutPlan(max_failures=-1)
    with pytest.raises(UsageError, match="--max-latency"):
        HealthPolicy(max_latency_ms=0)
    with pytest.raises(UsageError, match="runs"):
        HealthPolicy(runs=0)
