"""The interleaved schedule: sessions, rounds and blocks, and the orders they run in.

All models run in one runtime process per device, in ``sessions`` sessions. A session
loads every model afresh (in a random order), runs the runtime's ``interleave`` op and
unloads them: ``warmup`` untimed runs each, then rounds, each a fresh random permutation
of the models in which every model makes ``block`` consecutive timed runs, until every
model has ``min_seconds`` of timed runs (and at least ``rounds`` rounds). Windows are
sized by time, so a sub-millisecond model makes thousands of runs per session and a
slow one a few blocks; sessions of one device may hold different numbers of runs.

Why sessions: two loads of the very same model differ by a fraction of a percent for as
long as they live (where the allocator put their weights and buffers), and a test that
treats thousands of runs of one load as independent reads that as a real difference.
A session is the statistical unit; runs and blocks inside it are not independent.

``precision``: the first :data:`PILOT_SESSIONS` sessions' spread plans how many sessions
the comparison needs to resolve a change that small (:func:`edgeship.ab.stats.plan_sessions`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeship.core.errors import UsageError
from edgeship_runtime.measure import InterleavePolicy

__all__ = [
    "DEFAULT_SESSION_SECONDS",
    "MAX_SESSIONS",
    "MIN_SESSIONS",
    "PILOT_SESSIONS",
    "Schedule",
    "block_medians",
    "session_medians",
    "split_sessions",
]

MIN_SESSIONS = 6
"""With 6 sessions the two-sided signed-rank test can reject at 0.05 (p = 2/64) only when
every session ratio lies on one side; fewer can never reject."""
PILOT_SESSIONS = MIN_SESSIONS
"""Sessions run first with ``--precision``: their spread plans the rest."""
MAX_SESSIONS = 200
"""The most sessions ``--precision`` plans."""
DEFAULT_SESSION_SECONDS = 0.5
"""Timed running per model and session by default, in seconds: ten sessions give every
model 5 s of timed runs, and a sub-millisecond model thousands of runs per session
median."""


@dataclass(frozen=True)
class Schedule:
    """``sessions`` fresh loads of every model; in each, rounds of ``block`` runs per model
    until every model has ``min_seconds`` of timed runs, and at least ``runs`` timed runs
    per model over all sessions (rounded up to whole rounds); ``warmup`` untimed runs per
    model and session; ``seed`` draws every order. ``precision`` (a fraction: 0.02 for
    2 %): plan the sessions from the first ones' spread so that a change that small is
    detected, ``sessions`` being the least run. ``cpus``: pin the runtime to these CPUs."""

    runs: int = 100
    sessions: int = 10
    block: int = 10
    warmup: int = 10
    seed: int = 0
    min_seconds: float = DEFAULT_SESSION_SECONDS
    precision: float | None = None
    cpus: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"--runs must be at least 1, got {self.runs}")
        if self.block < 1:
            raise UsageError(f"--block must be at least 1, got {self.block}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.min_seconds < 0:
            raise UsageError(f"--min-seconds must be 0 or more, got {self.min_seconds}")
        if self.precision is not None and not 0 < self.precision < 1:
            raise UsageError(
                f"--precision is a fraction of the median (0.02 for 2 %), got {self.precision}"
            )
        if self.sessions < MIN_SESSIONS:
            raise UsageError(
                f"--sessions must be at least {MIN_SESSIONS} (the test's unit is a session; "
                f"fewer can never show a difference), got {self.sessions}"
            )
        if self.sessions > MAX_SESSIONS:
            raise UsageError(f"--sessions must be at most {MAX_SESSIONS}, got {self.sessions}")

    @property
    def rounds(self) -> int:
        """The least rounds per session (more until ``min_seconds``)."""
        return max(1, math.ceil(self.runs / (self.sessions * self.block)))

    @property
    def pilot(self) -> int:
        """Sessions run before any planning: all of them without ``precision``."""
        return min(self.sessions, PILOT_SESSIONS) if self.precision else self.sessions

    def load_order(self, session: int, models: int) -> list[int]:
        """The order to load the models in (indices) in ``session``."""
        order = list(range(models))
        random.Random(self.seed * 100_003 + session).shuffle(order)
        return order

    def policy(self, session: int) -> InterleavePolicy:
        """How the runtime interleaves the models in one session (its own seed each)."""
        return InterleavePolicy(
            warmup=self.warmup,
            block=self.block,
            blocks=self.rounds,
            seed=self.seed * 100_003 + session,
            min_seconds=self.min_seconds,
            cpus=self.cpus,
        )


def split_sessions(samples_ms: Sequence[float], session_runs: Sequence[int]) -> list[np.ndarray]:
    """Samples in run order cut into sessions of ``session_runs`` runs each."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if not session_runs or min(session_runs) < 1 or sum(session_runs) != a.size:
        raise ValueError(f"{a.size} samples do not split into sessions of {list(session_runs)}")
    return np.split(a, np.cumsum(session_runs)[:-1])


def session_medians(samples_ms: Sequence[float], session_runs: Sequence[int]) -> np.ndarray:
    return np.array([np.median(s) for s in split_sessions(samples_ms, session_runs)])


def block_medians(samples_ms: Sequence[float], block: int) -> np.ndarray:
    """Per-block medians in run order (for drift plots)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if block < 1 or a.size % block:
        raise ValueError(f"{a.size} samples do not split into blocks of {block}")
    return np.median(a.reshape(-1, block), axis=1)
