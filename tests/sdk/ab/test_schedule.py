"""The interleaved schedule: validation, sizes, orders."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.ab.schedule import (
    MIN_SESSIONS,
    Schedule,
    block_medians,
    session_medians,
    split_sessions,
)
from edgeship.core.errors import UsageError


def test_sizes_round_up_to_whole_rounds() -> None:
    s = Schedule(runs=300, sessions=10, block=10)
    assert (s.rounds, s.runs_per_session, s.timed_runs) == (3, 30, 300)
    s = Schedule(runs=301, sessions=10, block=10)
    assert (s.rounds, s.timed_runs) == (4, 400)
    assert Schedule(runs=1, sessions=4, block=5).timed_runs == 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "--runs must be at least 1"),
        ({"block": 0}, "--block must be at least 1"),
        ({"warmup": -1}, "--warmup must be 0 or more"),
        ({"sessions": MIN_SESSIONS - 1}, "--sessions must be at least 4"),
    ],
)
def test_validation(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Schedule(**kwargs)


def test_load_orders_are_seeded_permutations() -> None:
    s = Schedule(sessions=20, seed=3)
    orders = s.load_orders(3)
    assert len(orders) == 20 and all(sorted(o) == [0, 1, 2] for o in orders)
    assert orders == Schedule(sessions=20, seed=3).load_orders(3)
    assert len({tuple(o) for o in orders}) > 1
    assert orders != Schedule(sessions=20, seed=4).load_orders(3)


def test_each_session_gets_its_own_seed() -> None:
    s = Schedule(runs=300, sessions=10, block=10, warmup=5, seed=1)
    a, b = s.policy(0), s.policy(1)
    assert a.blocks == 3 and a.block == 10 and a.warmup == 5
    assert a.seed != b.seed


def test_split_and_medians() -> None:
    samples = np.arange(24, dtype=float)
    assert split_sessions(samples, 4).shape == (4, 6)
    assert list(session_medians(samples, 4)) == [2.5, 8.5, 14.5, 20.5]
    assert list(block_medians(samples, 12)) == [5.5, 17.5]
    with pytest.raises(ValueError):
        split_sessions(samples, 5)
