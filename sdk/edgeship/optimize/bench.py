"""Interleaved latency of several models (or sessions) on one target.

:func:`interleaved` is the one loop behind every "base against variant" figure
(``edgeship compress --latency``, ``edgeship optimize --measure``, the migration
benchmarks): each round profiles every entry once, in order and then in reverse order on
the next round (A B, B A, ...), so slow drift (heat, background load) and order effects
spread over all of them; an entry's figure is the median of its per-round p50.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.report import ProfileReport

from edgeship.core.config import ProfileConfig
from edgeship.targets import Target
from edgeship.optimize.report import Measurement
from edgeship.optimize.tune import profile_as_given

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


def measure_models(
    target: Target,
    models: Mapping[str, Path],
    policy: MeasurePolicy,
    rounds: int = 3,
    sessions: Mapping[str, SessionOptions] | None = None,
    base: ProfileConfig | None = None,
) -> list[Measurement]:
    """Every (model, session) pair profiled once per round; defaults: one default session."""
    sessions = sessions or {"default": SessionOptions()}
    base = replace(base or ProfileConfig(), policy=policy)
    pairs = [(m, s) for m in models for s in sessions]
    entries = [(models[m], replace(base, session=sessions[s])) for m, s in pairs]
    per_pair = interleaved(
        lambda model, config: profile_as_given(target, model, config), entries, rounds
    )
    return [
        Measurement(
            model=model,
            setting=setting,
            p50_ms=median_p50_ms(reports),
            mean_ms=statistics.median(r.latency_ms.mean for r in reports),
            load_ms=statistics.median(r.load_ms for r in reports),
            p50_per_round_ms=[round(r.latency_ms.p50, 6) for r in reports],
        )
        for (model, setting), reports in zip(pairs, per_pair, strict=True)
    ]
