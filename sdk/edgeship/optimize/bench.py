"""Interleaved latency of several models (or sessions) on one target.

Each round profiles every entry once, in order, so slow drift (heat, background load)
spreads over all of them; an entry's figure is the median of its per-round p50.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy

from ..config import ProfileConfig
from ..targets import Target
from .report import Measurement
from .tune import profile_as_given


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
    p50s: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
    means: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
    loads: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
    for _ in range(rounds):
        for model, setting in pairs:
            config = replace(base, session=sessions[setting])
            report = profile_as_given(target, models[model], config)
            p50s[(model, setting)].append(report.latency_ms.p50)
            means[(model, setting)].append(report.latency_ms.mean)
            loads[(model, setting)].append(report.load_ms)
    return [
        Measurement(
            model=model,
            setting=setting,
            p50_ms=statistics.median(p50s[(model, setting)]),
            mean_ms=statistics.median(means[(model, setting)]),
            load_ms=statistics.median(loads[(model, setting)]),
            p50_per_round_ms=[round(v, 6) for v in p50s[(model, setting)]],
        )
        for model, setting in pairs
    ]
