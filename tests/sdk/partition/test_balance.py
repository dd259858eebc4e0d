"""Cut points: exact bottleneck (checked against brute force), then fewest bytes crossed."""

from __future__ import annotations

import itertools
import random

import pytest

from edgeship.partition._balance import balanced_cuts, bottleneck, stage_costs


def _brute(costs: list[float], k: int) -> float:
    return min(
        max(stage_costs(costs, cuts))
        for cuts in itertools.combinations(range(1, len(costs)), k - 1)
    )


def test_matches_brute_force() -> None:
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 8)
        k = rng.randint(1, n)
        costs = [float(rng.choice([0, 1, 2, 5, 10])) for _ in range(n)]
        assert bottleneck(costs, k) == pytest.approx(_brute(costs, k))
        cuts = balanced_cuts(costs, k)
        assert len(cuts) == k - 1 and cuts == sorted(set(cuts))
        assert all(0 < c < n for c in cuts)
        assert max(stage_costs(costs, cuts)) == pytest.approx(bottleneck(costs, k))


def test_a_heavy_node_gets_a_stage_of_its_own() -> None:
    assert balanced_cuts([1, 1, 1, 1, 10, 1, 1], 3) == [4, 5]


def test_slack_buys_a_cheaper_cut() -> None:
    costs = [1.0] * 8
    crossing = [0, 9, 9, 9, 9, 1, 9, 9]
    assert balanced_cuts(costs, 2, crossing) == [4]  # exact balance
    assert balanced_cuts(costs, 2, crossing, slack=0.25) == [5]  # 5/3 split, 1 byte across


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="3 stages need at least 3 nodes"):
        balanced_cuts([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="at least one stage"):
        bottleneck([1.0], 0)
    with pytest.raises(ValueError, match=">= 0"):
        bottleneck([1.0, -1.0], 1)
