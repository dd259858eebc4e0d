"""Interleaved latency: the one loop behind every "base against variant" figure
(``edgeship compress --latency``, ``edgeship optimize --measure``, the migration
benchmarks).

Each round profiles every entry once, in order and then in reverse order on the next
round (A B, B A, ...), so slow drift (heat, background load) and order effects spread
over all of them; an entry's figure is the median of its per-round p50.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from edgeship.core.config import ProfileConfig
from edgeship_runtime.report import ProfileReport

__all__ = ["Profile", "interleaved", "median_p50_ms"]

Profile = Callable[[Path, ProfileConfig], ProfileReport]
"""Profiles one model with one config on a target, e.g. ``target.profile``."""


def interleaved(
    profile: Profile,
    entries: Sequence[tuple[Path, ProfileConfig]],
    rounds: int,
    discard: int = 0,
) -> list[list[ProfileReport]]:
    """Profile every entry once per round, the order reversed every other round.

    The first ``discard`` rounds run and are dropped (a fresh runtime's first sessions run
    slower: cold caches, clocks). Returns, per entry in the order given, its reports of
    the ``rounds`` kept rounds.
    """
    kept: list[list[ProfileReport]] = [[] for _ in entries]
    forward = list(range(len(entries)))
    for i in range(discard + rounds):
        for k in forward if i % 2 == 0 else forward[::-1]:
            report = profile(*entries[k])
            if i >= discard:
                kept[k].append(report)
    return kept


def median_p50_ms(reports: Sequence[ProfileReport]) -> float:
    """The median of the reports' p50 latencies, in ms."""
    return float(statistics.median(r.latency_ms.p50 for r in reports))
