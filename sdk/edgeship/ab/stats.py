"""The statistics of an A/B comparison: pure functions over arrays of milliseconds.

The unit of the test and of the interval is a *session* (a fresh load of every model,
see :mod:`.schedule`): runs inside a session share their load's memory placement and the
moment's clock and heat, so they are neither independent nor exchangeable with runs of
another session. Pairs of (base, variant) arrays are shaped (sessions, runs per session),
and row s of both was measured in the same session, interleaved.

- Test: two-sided Mann-Whitney U (scipy) on per-session medians. Across sessions the
  medians are close to independent, so its false-positive rate stays at or below alpha.
- Interval: percentile bootstrap of the ratio of medians resampling whole sessions
  (pairs kept together), expanded for the small number of sessions (Hesterberg 2015:
  the tail levels come from ``sqrt(S / (S - 1)) * t(S - 1)`` instead of ``z``), since a
  plain percentile interval over ~10 clusters covers about 90 %, not 95 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..errors import UsageError
from .result import FASTER, NO_DIFFERENCE, SLOWER, Interval, LatencySummary

_CHUNK_ELEMENTS = 4_000_000


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


def ratio_of_medians(base: np.ndarray, variant: np.ndarray) -> float:
    """median(variant) / median(base) over all samples: below 1 means the variant is faster."""
    return float(np.median(variant) / np.median(base))


def bootstrap_ratios(
    base: np.ndarray, variant: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Ratios of medians over ``resamples`` resamplings of whole sessions (rows), the
    base's and the variant's row s kept together."""
    base, variant = np.atleast_2d(base), np.atleast_2d(variant)
    sessions = base.shape[0]
    if variant.shape[0] != sessions:
        raise ValueError(f"{sessions} base sessions but {variant.shape[0]} variant sessions")
    chunk = max(1, _CHUNK_ELEMENTS // max(base.size, variant.size))
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        idx = rng.integers(0, sessions, size=(n, sessions))
        b = np.median(base[idx].reshape(n, -1), axis=1)
        v = np.median(variant[idx].reshape(n, -1), axis=1)
        out[start : start + n] = v / b
    return out


def tail_levels(clusters: int, confidence: float) -> tuple[float, float]:
    """Lower and upper quantile levels of the expanded percentile interval."""
    alpha = 1.0 - confidence
    if clusters < 2:
        return alpha / 2, 1 - alpha / 2
    from scipy import stats

    z = math.sqrt(clusters / (clusters - 1)) * float(stats.t.ppf(1 - alpha / 2, clusters - 1))
    tail = 1.0 - NormalDist().cdf(z)
    return tail, 1.0 - tail


def ratio_ci(
    base: np.ndarray, variant: np.ndarray, policy: StatsPolicy, seed_offset: int = 0
) -> Interval:
    """Interval of median(variant) / median(base); arrays are (sessions, runs)."""
    rng = np.random.default_rng([policy.seed, seed_offset])
    ratios = bootstrap_ratios(base, variant, policy.bootstrap, rng)
    low, high = np.quantile(ratios, tail_levels(np.atleast_2d(base).shape[0], policy.confidence))
    return Interval(float(low), float(high))


def pooled_ratio(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], policy: StatsPolicy, seed_offset: int = 0
) -> tuple[float, Interval]:
    """Over devices: the geometric mean of per-device ratios of medians, and its interval
    by a stratified bootstrap (sessions resampled within each device)."""
    rng = np.random.default_rng([policy.seed, seed_offset, len(pairs)])
    estimate = math.exp(float(np.mean([math.log(ratio_of_medians(b, v)) for b, v in pairs])))
    logs = np.mean(
        [np.log(bootstrap_ratios(b, v, policy.bootstrap, rng)) for b, v in pairs], axis=0
    )
    clusters = sum(np.atleast_2d(b).shape[0] for b, _ in pairs) - len(pairs) + 1
    low, high = np.exp(np.quantile(logs, tail_levels(clusters, policy.confidence)))
    return estimate, Interval(float(low), float(high))


def mann_whitney(
    base_units: Sequence[float] | np.ndarray, variant_units: Sequence[float] | np.ndarray
) -> MannWhitney:
    """Two-sided Mann-Whitney U (scipy's ``auto`` method: exact for small samples
    without ties, else the normal approximation with tie and continuity correction)."""
    from scipy import stats

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


def pooled_mann_whitney(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> MannWhitney:
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


def verdict(test: MannWhitney, alpha: float) -> str:
    """faster / slower at ``alpha`` (two-sided), else no significant difference."""
    if test.p_value >= alpha or test.prob_greater == 0.5:
        return NO_DIFFERENCE
    return SLOWER if test.prob_greater > 0.5 else FASTER


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
