"""The interleaved schedule: sessions, rounds and blocks, and the orders they run in.

All models run in one runtime process per device, in ``sessions`` sessions. A session
loads every model afresh (in a random order), runs the runtime's ``interleave`` op and
unloads them: ``warmup`` untimed runs each, then ``rounds`` rounds, each a fresh random
permutation of the models in which every model makes ``block`` consecutive timed runs.

Why sessions: two loads of the very same model differ by a fraction of a percent for as
long as they live (where the allocator put their weights and buffers), and a test that
treats thousands of runs of one load as independent reads that as a real difference.
A session is the statistical unit; runs and blocks inside it are not independent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgeship.core.errors import UsageError
from edgeship_runtime.measure import InterleavePolicy

__all__ = ["MIN_SESSIONS", "Schedule", "block_medians", "session_medians", "split_sessions"]

MIN_SESSIONS = 4
"""With 4 sessions per model a two-sided Mann-Whitney test can reject at 0.05 (p = 2/70)
only on complete separation; fewer can never reject."""


@dataclass(frozen=True)
class Schedule:
    """``runs`` timed runs per model, spread over ``sessions`` fresh loads in blocks of
    ``block`` (rounded up to whole rounds); ``warmup`` untimed runs per model and session;
    ``seed`` draws every order."""

    runs: int = 300
    sessions: int = 10
    block: int = 10
    warmup: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"--runs must be at least 1, got {self.runs}")
        if self.block < 1:
            raise UsageError(f"--block must be at least 1, got {self.block}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.sessions < MIN_SESSIONS:
            raise UsageError(
                f"--sessions must be at least {MIN_SESSIONS} (the test's unit is a session; "
                f"fewer can never show a difference), got {self.sessions}"
            )

    @property
    def rounds(self) -> int:
        """Rounds per session."""
        return max(1, math.ceil(self.runs / (self.sessions * self.block)))

    @property
    def runs_per_session(self) -> int:
        return self.rounds * self.block

    @property
    def timed_runs(self) -> int:
        """Timed runs per model: whole rounds in every session."""
        return self.sessions * self.runs_per_session

    def load_orders(self, models: int) -> list[list[int]]:
        """Per session, the order to load the models in (indices)."""
        rng = random.Random(self.seed)
        orders = []
        for _ in range(self.sessions):
            order = list(range(models))
            rng.shuffle(order)
            orders.append(order)
        return orders

    def policy(self, session: int) -> InterleavePolicy:
        """How the runtime interleaves the models in one session (its own seed each)."""
        return InterleavePolicy(
            warmup=self.warmup,
            block=self.block,
            blocks=self.rounds,
            seed=self.seed * 100_003 + session,
        )


def split_sessions(samples_ms: Sequence[float], sessions: int) -> np.ndarray:
    """Samples in run order as a (sessions, runs per session) array."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if sessions < 1 or a.size == 0 or a.size % sessions:
        raise ValueError(f"{a.size} samples do not split into {sessions} sessions")
    return a.reshape(sessions, -1)


def session_medians(samples_ms: Sequence[float], sessions: int) -> np.ndarray:
    return np.median(split_sessions(samples_ms, sessions), axis=1)


def block_medians(samples_ms: Sequence[float], block: int) -> np.ndarray:
    """Per-block medians in run order (for drift plots)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if block < 1 or a.size % block:
        raise ValueError(f"{a.size} samples do not split into blocks of {block}")
    return np.median(a.reshape(-1, block), axis=1)
