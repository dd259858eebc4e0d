"""Latency of several models (or sessions) on one target, measured interleaved
(:mod:`edgeship.targets.interleave`).

``edgeship optimize --measure`` and the migration benchmarks: every model under every
session setting, one entry each, with its load time.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from edgeship.core.config import ProfileConfig
from edgeship.optimize._report import Measurement
from edgeship.optimize.tune import profile_as_given
from edgeship.targets import Target
from edgeship.targets.interleave import interleaved, median_p50_ms
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy

__all__ = ["measure_models"]


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
