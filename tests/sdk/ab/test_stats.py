"""The pure statistics: summaries, bootstrap coverage, the signed-rank test, verdicts,
Wilson, the detectable change and the planning of sessions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from edgeship.ab.result import FASTER, NO_DIFFERENCE, SLOWER
from edgeship.ab.stats import (
    SignedRank,
    StatsPolicy,
    detectable_change,
    latency_summary,
    plan_sessions,
    pooled_ratio,
    pooled_signed_rank,
    ratio_ci,
    ratio_of_medians,
    signed_rank,
    tail_levels,
    verdict,
)
from edgeship.core.errors import UsageError
from tests.sdk.ab.fakes import latencies


def test_latency_summary_matches_numpy() -> None:
    a = np.random.default_rng(0).lognormal(size=1001)
    s = latency_summary(a)
    assert s.n == 1001 and s.min_ms == a.min() and s.max_ms == a.max()
    assert s.p50_ms == pytest.approx(np.median(a))
    assert s.p90_ms == pytest.approx(np.percentile(a, 90))
    assert s.p99_ms == pytest.approx(np.percentile(a, 99))
    with pytest.raises(ValueError):
        latency_summary([])


def medians(latencies_ms: np.ndarray) -> np.ndarray:
    """Per session (row), its median."""
    return np.median(latencies_ms, axis=1)


def test_ratio_of_medians_is_the_geometric_mean_of_the_session_ratios() -> None:
    assert ratio_of_medians(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])) == 0.5
    assert ratio_of_medians(np.array([1.0, 1.0]), np.array([0.5, 2.0])) == pytest.approx(1.0)


def test_tail_levels_widen_for_few_sessions() -> None:
    low, high = tail_levels(10, 0.95)
    assert low < 0.025 and high > 0.975 and low == pytest.approx(1 - high)
    assert tail_levels(1, 0.95) == pytest.approx((0.025, 0.975))
    assert tail_levels(1000, 0.95)[0] == pytest.approx(0.025, abs=5e-4)


def _coverage(reps: int, true_ratio: float, sessions: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    policy = StatsPolicy(bootstrap=400, seed=seed)
    hits = 0
    for rep in range(reps):
        drift = np.exp(rng.normal(0, 0.05, size=sessions))  # shared by both models
        base = latencies(rng, 10.0, sessions=sessions, runs=20, drift=drift, load_sd=0.01)
        variant = latencies(
            rng, 10.0 * true_ratio, sessions=sessions, runs=20, drift=drift, load_sd=0.01
        )
        ci = ratio_ci(medians(base), medians(variant), policy, seed_offset=rep)
        hits += ci.contains(true_ratio)
    return hits / reps


def test_bootstrap_interval_covers_the_true_ratio_about_95_percent() -> None:
    """Synthetic sessions with per-load offsets (sd 1 %) larger than the per-session noise
    of a median: the interval must account for them. 300 experiments: a true 95 % lands
    in [0.91, 0.98] with probability > 0.99."""
    coverage = _coverage(reps=300, true_ratio=0.8, sessions=10, seed=1)
    assert 0.91 <= coverage <= 0.985, coverage


def test_interval_is_paired_over_sessions_so_shared_drift_cancels() -> None:
    rng = np.random.default_rng(3)
    drift = np.linspace(1.0, 2.0, 10)  # a device heating up: +100 % over the run
    base = latencies(rng, 10.0, drift=drift, load_sd=0.0, noise_sd=0.01)
    variant = latencies(rng, 5.0, drift=drift, load_sd=0.0, noise_sd=0.01)
    ci = ratio_ci(medians(base), medians(variant), StatsPolicy())
    assert ci.low < 0.5 < ci.high and ci.high - ci.low < 0.05


def test_pooled_ratio_is_the_geometric_mean_and_covers_it() -> None:
    rng = np.random.default_rng(4)
    pairs = []
    for speed, ratio in ((1.0, 0.5), (3.0, 0.8)):  # a fast device and a slow one
        drift = np.full(10, speed)
        base, variant = latencies(rng, 10.0, drift=drift), latencies(rng, 10.0 * ratio, drift=drift)
        pairs.append((medians(base), medians(variant)))
    estimate, ci = pooled_ratio(pairs, StatsPolicy(bootstrap=500))
    assert estimate == pytest.approx(np.sqrt(0.5 * 0.8), rel=0.02)
    assert ci.contains(estimate)


@pytest.mark.parametrize("sessions", [6, 10, 60])
def test_signed_rank_matches_scipy_on_the_log_ratios(sessions: int) -> None:
    rng = np.random.default_rng(sessions)
    base = rng.lognormal(0.0, 0.05, sessions)
    variant = base * rng.lognormal(0.02, 0.02, sessions)
    result = signed_rank(base, variant)
    expected = scipy_stats.wilcoxon(np.log(variant / base), alternative="two-sided")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.prob_greater == pytest.approx(np.mean(variant > base))


def test_signed_rank_of_equal_medians_is_no_evidence() -> None:
    result = signed_rank([1.0] * 6, [1.0] * 6)
    assert result.p_value == 1.0 and result.prob_greater == 0.5
    with pytest.raises(ValueError):
        signed_rank([1.0, 2.0], [1.0])


def test_pooled_test_does_not_mistake_a_slow_device_for_a_difference() -> None:
    rng = np.random.default_rng(7)
    fast = (rng.normal(10, 0.1, 10), rng.normal(10, 0.1, 10))
    slow = (rng.normal(30, 0.3, 10), rng.normal(30, 0.3, 10))
    assert pooled_signed_rank([fast, slow]).p_value > 0.05
    faster = (rng.normal(10, 0.1, 10), rng.normal(9, 0.1, 10))
    slower_device = (rng.normal(30, 0.3, 10), rng.normal(27, 0.3, 10))
    result = pooled_signed_rank([faster, slower_device])
    assert result.p_value < 1e-4 and result.prob_greater < 0.5


@pytest.mark.parametrize(
    ("p", "prob", "expected"),
    [
        (0.01, 0.1, FASTER),
        (0.01, 0.9, SLOWER),
        (0.049, 0.2, FASTER),
        (0.05, 0.0, NO_DIFFERENCE),  # p must be below alpha
        (0.2, 0.0, NO_DIFFERENCE),
        (0.001, 0.5, NO_DIFFERENCE),
    ],
)
def test_verdict(p: float, prob: float, expected: str) -> None:
    assert verdict(SignedRank(statistic=0.0, p_value=p, prob_greater=prob), alpha=0.05) == expected


def test_false_positive_rate_on_session_ratios_stays_at_or_below_alpha() -> None:
    """A/A with per-load offsets and drift: the test on session ratios rejects in
    <= alpha of 2000 experiments (a test on every run would reject far more often)."""
    rng = np.random.default_rng(8)
    rejections = per_run_rejections = 0
    trials = 2000
    for _ in range(trials):
        drift = np.exp(rng.normal(0, 0.03, size=10))
        a = latencies(rng, 10.0, drift=drift, load_sd=0.02)
        b = latencies(rng, 10.0, drift=drift, load_sd=0.02)
        rejections += verdict(signed_rank(medians(a), medians(b)), 0.05) != NO_DIFFERENCE
        if _ < 200:
            per_run_rejections += scipy_stats.mannwhitneyu(a.ravel(), b.ravel()).pvalue < 0.05
    assert rejections / trials <= 0.05
    assert per_run_rejections / 200 > 0.2  # why the unit is a session


def test_the_detectable_change_shrinks_with_sessions_and_grows_with_the_spread() -> None:
    assert detectable_change(0.01, 5, alpha=0.05) is None  # 2/32 > 0.05: cannot reject
    ten = detectable_change(0.01, 10, alpha=0.05)
    assert ten is not None
    # t(0.975, 9) + t(0.8, 9) = 2.262 + 0.883, over sqrt(10) and sqrt(3/pi)
    assert ten == pytest.approx(np.expm1(3.145 * 0.01 / np.sqrt(10) / np.sqrt(3 / np.pi)), rel=1e-3)
    assert detectable_change(0.02, 10, alpha=0.05) > ten  # type: ignore[operator]
    assert detectable_change(0.01, 40, alpha=0.05) < ten  # type: ignore[operator]


def test_plan_sessions_is_the_fewest_that_reach_the_precision() -> None:
    n = plan_sessions(0.02, precision=0.02, alpha=0.05, least=6, most=200)
    assert n is not None
    assert detectable_change(0.02, n, 0.05) <= 0.02 < detectable_change(0.02, n - 1, 0.05)  # type: ignore[operator]
    assert plan_sessions(0.001, precision=0.02, alpha=0.05, least=10, most=200) == 10
    assert plan_sessions(0.5, precision=0.001, alpha=0.05, least=6, most=50) is None


def test_stats_policy_validates() -> None:
    with pytest.raises(UsageError, match="alpha"):
        StatsPolicy(alpha=0.0)
    with pytest.raises(UsageError, match="bootstrap"):
        StatsPolicy(bootstrap=10)
    with pytest.raises(UsageError, match="confidence"):
        StatsPolicy(confidence=1.0)
