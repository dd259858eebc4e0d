"""The interleaved schedule: validation, sizes, orders, sessions of unequal lengths."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship.ab.schedule import (
    DEFAULT_SESSION_SECONDS,
    MIN_SESSIONS,
    PILOT_SESSIONS,
    Schedule,
    block_medians,
    session_medians,
    split_sessions,
)
from edgeship.core.errors import UsageError


def test_the_least_rounds_round_up_and_time_sizes_the_rest() -> None:
    assert Schedule(runs=300, sessions=10, block=10).rounds == 3
    assert Schedule(runs=301, sessions=10, block=10).rounds == 4
    assert Schedule(runs=1, sessions=6, block=5).rounds == 1
    policy = Schedule().policy(0)
    assert policy.min_seconds == DEFAULT_SESSION_SECONDS and policy.blocks == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "--runs must be at least 1"),
        ({"block": 0}, "--block must be at least 1"),
        ({"warmup": -1}, "--warmup must be 0 or more"),
        ({"sessions": MIN_SESSIONS - 1}, f"--sessions must be at least {MIN_SESSIONS}"),
        ({"min_seconds": -1.0}, "--min-seconds must be 0 or more"),
        ({"precision": 2.0}, "--precision is a fraction of the median"),
    ],
)
def test_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Schedule(**kwargs)  # type: ignore[arg-type]


def test_load_orders_are_seeded_permutations() -> None:
    s = Schedule(sessions=20, seed=3)
    orders = [s.load_order(k, 3) for k in range(20)]
    assert all(sorted(o) == [0, 1, 2] for o in orders)
    assert orders == [Schedule(seed=3).load_order(k, 3) for k in range(20)]
    assert len({tuple(o) for o in orders}) > 1
    assert orders != [Schedule(seed=4).load_order(k, 3) for k in range(20)]


def test_each_session_gets_its_own_seed_and_the_cpus() -> None:
    s = Schedule(runs=300, sessions=10, block=10, warmup=5, seed=1, cpus=(1,))
    a, b = s.policy(0), s.policy(1)
    assert a.blocks == 3 and a.block == 10 and a.warmup == 5 and a.cpus == (1,)
    assert a.seed != b.seed


def test_the_pilot_is_every_session_unless_a_precision_is_asked() -> None:
    assert Schedule(sessions=12).pilot == 12
    assert Schedule(sessions=12, precision=0.02).pilot == PILOT_SESSIONS


def test_split_and_medians_of_sessions_of_any_length() -> None:
    samples = np.arange(24, dtype=float)
    assert [s.size for s in split_sessions(samples, [6, 6, 6, 6])] == [6, 6, 6, 6]
    assert list(session_medians(samples, [6, 6, 6, 6])) == [2.5, 8.5, 14.5, 20.5]
    assert list(session_medians(samples, [4, 20])) == [1.5, 13.5]
    assert list(block_medians(samples, 12)) == [5.5, 17.5]
    with pytest.raises(ValueError):
        split_sessions(samples, [5, 5])
