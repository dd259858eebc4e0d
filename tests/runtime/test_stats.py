"""Latency statistics against numpy on known data."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship_runtime.stats import summarize_ms, throughput_ips

DATA = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.0, 6.0, 9.0, 8.0, 100.0]


def test_percentiles_match_numpy_linear_interpolation() -> None:
    stats = summarize_ms(DATA)
    expected = np.percentile(DATA, [50, 90, 95, 99])
    assert [stats.p50, stats.p90, stats.p95, stats.p99] == pytest.approx(expected.tolist())
    assert stats.p50 == 6.0
    assert stats.p90 == pytest.approx(10.0)  # 9 + 0.0 * (10 - 9): rank 9 of 0..10
    assert stats.p99 == pytest.approx(10.0 + 0.9 * 90.0)


def test_min_max_mean_n() -> None:
    stats = summarize_ms(DATA)
    assert (stats.n, stats.min, stats.max) == (11, 1.0, 100.0)
    assert stats.mean == pytest.approx(sum(DATA) / 11)


def test_std_is_the_sample_std() -> None:
    stats = summarize_ms([1.0, 2.0, 3.0, 4.0])
    assert stats.std == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0], ddof=1))
    assert stats.std == pytest.approx((5.0 / 3.0) ** 0.5)


def test_one_sample() -> None:
    stats = summarize_ms([2.5])
    assert stats.n == 1
    assert stats.std == 0.0
    assert stats.min == stats.p50 == stats.p99 == stats.max == stats.mean == 2.5


def test_order_invariant_and_monotone_percentiles() -> None:
    rng = np.random.default_rng(0)
    samples = rng.lognormal(0.0, 1.0, 1000).tolist()
    a, b = summarize_ms(samples), summarize_ms(sorted(samples))
    assert (a.p50, a.p90, a.p99, a.min, a.max) == (b.p50, b.p90, b.p99, b.min, b.max)
    assert a.mean == pytest.approx(b.mean)
    assert a.min <= a.p50 <= a.p90 <= a.p95 <= a.p99 <= a.max


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        summarize_ms([])


def test_throughput_counts_batch_items_per_second() -> None:
    assert throughput_ips([2.0, 2.0], batch=4) == pytest.approx(2000.0)
    assert throughput_ips([0.0], batch=1) == 0.0
