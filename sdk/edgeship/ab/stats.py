"""The statistics of an A/B comparison: pure functions over arrays of milliseconds.

The unit of the test, the estimate and the interval is a *session* (a fresh load of every
model, see :mod:`.schedule`): runs inside a session share their load's memory placement
and the moment's clock and heat, so they are neither independent nor exchangeable with
runs of another session. Each session gives one median per model (over thousands of runs
for a fast model); base and variant medians of session s were measured in the same
session, interleaved. Every figure below is computed from those session medians, so the
test, the interval and the detectable change speak of the same numbers.

- The unit: the session's ratio, variant median over base median. Both were timed in
  the same window, block by block, so what the machine did meanwhile (another process,
  a clock step) falls on both and cancels; what is left is each load's own offset and
  the medians' noise. Across sessions the ratios are close to independent.
- Estimate: the geometric mean of the session ratios.
- Test: two-sided Wilcoxon signed-rank (scipy, exact for few sessions) on the log
  session ratios: under no difference they are symmetric around 0 (every load order
  and round order is drawn at random), so its false-positive rate stays at or below
  alpha.
- Interval: percentile bootstrap of the estimate resampling whole sessions, expanded for
  the small number of sessions (Hesterberg 2015: the tail levels come from
  ``sqrt(S / (S - 1)) * t(S - 1)`` instead of ``z``), since a plain percentile
  interval over ~10 clusters covers about 90 %, not 95 %.
- Several variants: Holm's step-down correction of the variants' p-values, so the chance
  of calling any one of them different by luck stays at alpha.
- Minimum detectable effect: the smallest change of the median the test would catch with
  80 % power at the level used, from the spread (standard deviation) of the log session
  ratios (normal approximation with t quantiles and the signed-rank test's efficiency
  3/π; checked by simulation).
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
    "SignedRank",
    "StatsPolicy",
    "bootstrap_ratios",
    "detectable_change",
    "holm",
    "latency_summary",
    "log_ratios",
    "log_spread",
    "min_attainable_p",
    "min_detectable_change",
    "plan_sessions",
    "pooled_ratio",
    "pooled_signed_rank",
    "ratio_ci",
    "ratio_of_medians",
    "signed_rank",
    "tail_levels",
    "verdict",
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
class SignedRank:
    """Wilcoxon signed-rank test of the log session ratios (variant over base):
    ``statistic`` as scipy gives it; ``prob_greater``: the share of sessions in which the
    variant's median was the larger (ties half)."""

    statistic: float
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
    """The geometric mean of the session ratios (variant median over base median):
    below 1 means the variant is faster."""
    return math.exp(float(log_ratios(base_medians, variant_medians).mean()))


def bootstrap_ratios(
    base_medians: np.ndarray, variant_medians: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """:func:`ratio_of_medians` over ``resamples`` resamplings of whole sessions."""
    d = log_ratios(base_medians, variant_medians)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    return np.exp(d[idx].mean(axis=1))


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


def log_ratios(
    base_medians: Sequence[float] | np.ndarray, variant_medians: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Per session, log(variant median / base median)."""
    b = np.asarray(base_medians, dtype=np.float64)
    v = np.asarray(variant_medians, dtype=np.float64)
    if b.shape != v.shape or b.size == 0:
        raise ValueError(f"{b.size} base sessions but {v.size} variant sessions")
    return np.log(v / b)


def signed_rank(
    base_medians: Sequence[float] | np.ndarray, variant_medians: Sequence[float] | np.ndarray
) -> SignedRank:
    """Two-sided Wilcoxon signed-rank test of the log session ratios (scipy's ``auto``
    method: exact for few sessions without ties or zeros, else the normal
    approximation); sessions with equal medians are dropped, as Wilcoxon's test does."""
    return _signed_rank(log_ratios(base_medians, variant_medians))


def _signed_rank(d: np.ndarray) -> SignedRank:
    stats = _scipy_stats()

    prob = float(np.mean(d > 0) + 0.5 * np.mean(d == 0))
    if not np.any(d != 0):
        return SignedRank(statistic=0.0, p_value=1.0, prob_greater=0.5)
    result = stats.wilcoxon(d, alternative="two-sided", zero_method="wilcox", method="auto")
    p = float(result.pvalue)
    return SignedRank(
        statistic=float(result.statistic),
        p_value=1.0 if math.isnan(p) else min(p, 1.0),
        prob_greater=prob,
    )


def pooled_signed_rank(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> SignedRank:
    """The signed-rank test over devices: every device's log session ratios together
    (a ratio is within one session, so a fast device and a slow one cancel out)."""
    return _signed_rank(np.concatenate([log_ratios(b, v) for b, v in pairs]))


def verdict(test: SignedRank, alpha: float, p_value: float | None = None) -> str:
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


def min_attainable_p(sessions: int) -> float:
    """The smallest two-sided p-value the exact signed-rank test reaches with this many
    sessions (every ratio on one side)."""
    return min(1.0, 2.0 / 2**sessions)


def log_spread(medians: Sequence[float] | np.ndarray) -> float:
    """The standard deviation of the logs (0.01: about 1 %), of a model's session
    medians or of the log session ratios."""
    x = np.log(np.asarray(medians, dtype=np.float64))
    if x.size < 2:
        raise ValueError("a spread needs at least two sessions")
    return float(x.std(ddof=1))


def detectable_change(
    spread: float, sessions: int, alpha: float, power: float = 0.8
) -> float | None:
    """The smallest relative change of the median (0.03: 3 %) the two-sided signed-rank
    test on ``sessions`` session ratios detects with probability ``power`` at level
    ``alpha``, when their logs spread by ``spread`` (a standard deviation); None when
    the exact test cannot reach ``alpha`` with so few sessions.

    Normal approximation: t quantiles with sessions - 1 degrees of freedom, and the
    test's asymptotic efficiency against the t-test on normal data (3/π).
    """
    if sessions < 2 or min_attainable_p(sessions) >= alpha:
        return None
    stats = _scipy_stats()

    df = sessions - 1
    q = float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))
    return math.expm1(q * spread / math.sqrt(sessions) / math.sqrt(3 / math.pi))


def min_detectable_change(
    base_medians: Sequence[float] | np.ndarray,
    variant_medians: Sequence[float] | np.ndarray,
    alpha: float,
    power: float = 0.8,
) -> float | None:
    """:func:`detectable_change` at the spread of these sessions' log ratios."""
    d = log_ratios(base_medians, variant_medians)
    if d.size < 2:
        return None
    return detectable_change(float(d.std(ddof=1)), d.size, alpha, power)


def plan_sessions(
    spread: float, precision: float, alpha: float, least: int, most: int, power: float = 0.8
) -> int | None:
    """The fewest sessions (at least ``least``, at most ``most``) whose detectable change
    at ``spread`` (of the log session ratios) is at most ``precision``; None when even
    ``most`` do not reach it."""
    for n in range(max(least, 2), most + 1):
        change = detectable_change(spread, n, alpha, power)
        if change is not None and change <= precision:
            return n
    return None


def _scipy_stats() -> Any:
    return import_optional("scipy.stats", "computing A/B statistics")
