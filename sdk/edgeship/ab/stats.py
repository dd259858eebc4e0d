"""The statistics of an A/B comparison: pure functions over arrays of milliseconds.

The unit of the test, the estimate and the interval is a *session* (a fresh load of every
model, see :mod:`.schedule`): runs inside a session share their load's memory placement
and the moment's clock and heat, so they are neither independent nor exchangeable with
runs of another session. Each session gives one median per model (over thousands of runs
for a fast model); base and variant medians of session s were measured in the same
session, interleaved. Every figure below is computed from those session medians, so the
test, the interval and the detectable change speak of the same numbers.

- Estimate: the ratio of the geometric means of the session medians (variant / base).
- Test: two-sided Mann-Whitney U (scipy) on per-session medians. Across sessions the
  medians are close to independent, so its false-positive rate stays at or below alpha.
- Interval: percentile bootstrap of that ratio resampling whole sessions (pairs kept
  together), expanded for the small number of sessions (Hesterberg 2015: the tail
  levels come from ``sqrt(S / (S - 1)) * t(S - 1)`` instead of ``z``), since a plain
  percentile interval over ~10 clusters covers about 90 %, not 95 %.
- Several variants: Holm's step-down correction of the variants' p-values, so the chance
  of calling any one of them different by luck stays at alpha.
- Minimum detectable effect: the smallest ratio of medians the test would catch with 80 %
  power at the level used, from the spread of the session medians (normal approximation
  with t quantiles and the Mann-Whitney test's efficiency 3/π; checked by simulation).
- Planning (``--precision``): the fewest sessions whose detectable change, at the spread
  the first sessions showed, is at most the precision asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from edgeship.ab.result import FASTER, NO_DIFFERENCE, SLOWER, Interval, LatencySummary
from edgeship.core.errors import UsageError
from edgeship.core.extras import import_optional

__all__ = [
    "MannWhitney",
    "StatsPolicy",
    "bootstrap_ratios",
    "detectable_change",
    "holm",
    "latency_summary",
    "log_spread",
    "mann_whitney",
    "min_attainable_p",
    "min_detectable_change",
    "plan_sessions",
    "pooled_mann_whitney",
    "pooled_ratio",
    "ratio_ci",
    "ratio_of_medians",
    "tail_levels",
    "verdict",
    "wilson",
]


@dataclass(frozen=True)
class StatsPolicy:
    """``alpha`` of the test, ``confidence`` of intervals, ``bootstrap`` resamples."""

    alpha: float = 0.05
    confidence: float = 0.95
    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise UsageError(f"--alpha must be in (0, 0.5), got {self.alpha}")
        if not 0.5 <= self.confidence < 1.0:
            raise UsageError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if self.bootstrap < 100:
            raise UsageError(f"--bootstrap must be at least 100, got {self.bootstrap}")


@dataclass(frozen=True)
class MannWhitney:
    """Mann-Whitney U of the variant's units against the base's: ``u`` counts pairs where
    the variant's is larger (ties half); ``prob_greater = u / (n_variant * n_base)``."""

    u: float
    p_value: float
    prob_greater: float


def latency_summary(samples_ms: Sequence[float]) -> LatencySummary:
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples to summarize")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return LatencySummary(
        n=int(a.size),
        mean_ms=float(a.mean()),
        min_ms=float(a.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(a.max()),
    )


def ratio_of_medians(base_medians: np.ndarray, variant_medians: np.ndarray) -> float:
    """The variant's typical session median over the base's (geometric means of the
    session medians): below 1 means the variant is faster."""
    b, v = np.log(np.asarray(base_medians, float)), np.log(np.asarray(variant_medians, float))
    return math.exp(float(v.mean() - b.mean()))


def bootstrap_ratios(
    base_medians: np.ndarray, variant_medians: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """:func:`ratio_of_medians` over ``resamples`` resamplings of whole sessions, the
    base's and the variant's session s kept together."""
    b, v = np.log(np.asarray(base_medians, float)), np.log(np.asarray(variant_medians, float))
    if b.shape != v.shape:
        raise ValueError(f"{b.size} base sessions but {v.size} variant sessions")
    idx = rng.integers(0, b.size, size=(resamples, b.size))
    return np.exp(v[idx].mean(axis=1) - b[idx].mean(axis=1))


def tail_levels(clusters: int, confidence: float) -> tuple[float, float]:
    """Lower and upper quantile levels of the expanded percentile interval."""
    alpha = 1.0 - confidence
    if clusters < 2:
        return alpha / 2, 1 - alpha / 2
    stats = _scipy_stats()

    z = math.sqrt(clusters / (clusters - 1)) * float(stats.t.ppf(1 - alpha / 2, clusters - 1))
    tail = 1.0 - NormalDist().cdf(z)
    return tail, 1.0 - tail


def ratio_ci(
    base_medians: np.ndarray,
    variant_medians: np.ndarray,
    policy: StatsPolicy,
    seed_offset: int = 0,
) -> Interval:
    """Interval of :func:`ratio_of_medians` over the sessions' medians."""
    rng = np.random.default_rng([policy.seed, seed_offset])
    ratios = bootstrap_ratios(base_medians, variant_medians, policy.bootstrap, rng)
    low, high = np.quantile(ratios, tail_levels(len(base_medians), policy.confidence))
    return Interval(float(low), float(high))


def pooled_ratio(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], policy: StatsPolicy, seed_offset: int = 0
) -> tuple[float, Interval]:
    """Over devices (pairs of session medians): the geometric mean of per-device ratios,
    and its interval by a stratified bootstrap (sessions resampled within each device)."""
    rng = np.random.default_rng([policy.seed, seed_offset, len(pairs)])
    estimate = math.exp(float(np.mean([math.log(ratio_of_medians(b, v)) for b, v in pairs])))
    logs = np.mean(
        [np.log(bootstrap_ratios(b, v, policy.bootstrap, rng)) for b, v in pairs], axis=0
    )
    clusters = sum(len(b) for b, _ in pairs) - len(pairs) + 1
    low, high = np.exp(np.quantile(logs, tail_levels(clusters, policy.confidence)))
    return estimate, Interval(float(low), float(high))


def mann_whitney(
    base_units: Sequence[float] | np.ndarray, variant_units: Sequence[float] | np.ndarray
) -> MannWhitney:
    """Two-sided Mann-Whitney U (scipy's ``auto`` method: exact for small samples
    without ties, else the normal approximation with tie and continuity correction)."""
    stats = _scipy_stats()

    x = np.asarray(variant_units, dtype=np.float64)
    y = np.asarray(base_units, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("Mann-Whitney needs at least one unit per group")
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="auto")
    p = float(result.pvalue)
    return MannWhitney(
        u=float(result.statistic),
        p_value=1.0 if math.isnan(p) else min(p, 1.0),
        prob_greater=float(result.statistic) / (x.size * y.size),
    )


def pooled_mann_whitney(
    pairs: Sequence[tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
) -> MannWhitney:
    """Mann-Whitney over devices on log session medians centred per device (by the
    median of both groups together, which is symmetric under the null), so a fast device
    and a slow one do not pass for a difference between the models."""
    base_all, variant_all = [], []
    for base, variant in pairs:
        b, v = np.log(np.asarray(base, float)), np.log(np.asarray(variant, float))
        centre = float(np.median(np.concatenate([b, v])))
        base_all.append(b - centre)
        variant_all.append(v - centre)
    return mann_whitney(np.concatenate(base_all), np.concatenate(variant_all))


def verdict(test: MannWhitney, alpha: float, p_value: float | None = None) -> str:
    """faster / slower at ``alpha`` (two-sided), else no significant difference;
    ``p_value`` replaces the test's own (a corrected one)."""
    p = test.p_value if p_value is None else p_value
    if p >= alpha or test.prob_greater == 0.5:
        return NO_DIFFERENCE
    return SLOWER if test.prob_greater > 0.5 else FASTER


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: reject where adjusted p <
    alpha, and the chance of any false rejection among them stays at most alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m = len(p_values)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def min_attainable_p(n_base: int, n_variant: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney test reaches with these group
    sizes (complete separation, no ties)."""
    return min(1.0, 2.0 / math.comb(n_base + n_variant, n_base))


def log_spread(units: Sequence[Sequence[float] | np.ndarray]) -> float:
    """The pooled standard deviation of the log session medians of several models (each
    with at least two): the spread every detectable change and plan rests on."""
    logs = [np.log(np.asarray(u, dtype=np.float64)) for u in units]
    df = sum(x.size - 1 for x in logs)
    if df < 1 or any(x.size < 2 for x in logs):
        raise ValueError("the spread needs at least two sessions per model")
    return math.sqrt(sum((x.size - 1) * x.var(ddof=1) for x in logs) / df)


def detectable_change(
    spread: float, n_base: int, n_variant: int, alpha: float, power: float = 0.8
) -> float | None:
    """The smallest relative change of the median (0.03: 3 %) the two-sided Mann-Whitney
    test on ``n_base`` and ``n_variant`` session medians detects with probability
    ``power`` at level ``alpha``, when their logs spread by ``spread`` (a standard
    deviation); None when the exact test cannot reach ``alpha`` with so few.

    Normal approximation: t quantiles with n1 + n2 - 2 degrees of freedom, and the
    test's asymptotic efficiency against the t-test on normal data (3/π).
    """
    if n_base < 2 or n_variant < 2 or min_attainable_p(n_base, n_variant) >= alpha:
        return None
    stats = _scipy_stats()

    df = n_base + n_variant - 2
    q = float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))
    delta = q * spread * math.sqrt(1 / n_base + 1 / n_variant) / math.sqrt(3 / math.pi)
    return math.expm1(delta)


def min_detectable_change(
    base_units: Sequence[float] | np.ndarray,
    variant_units: Sequence[float] | np.ndarray,
    alpha: float,
    power: float = 0.8,
) -> float | None:
    """:func:`detectable_change` at the spread of these units (session medians)."""
    n1, n2 = len(base_units), len(variant_units)
    if n1 < 2 or n2 < 2:
        return None
    return detectable_change(log_spread([base_units, variant_units]), n1, n2, alpha, power)


def plan_sessions(
    spread: float, precision: float, alpha: float, least: int, most: int, power: float = 0.8
) -> int | None:
    """The fewest sessions (at least ``least``, at most ``most``) whose detectable change
    at ``spread`` is at most ``precision``; None when even ``most`` do not reach it."""
    for n in range(max(least, 2), most + 1):
        change = detectable_change(spread, n, n, alpha, power)
        if change is not None and change <= precision:
            return n
    return None


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion (sound near 0 and 1, unlike the Wald one)."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} not in [0, {n}]")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def _scipy_stats() -> Any:
    return import_optional("scipy.stats", "computing A/B statistics")
