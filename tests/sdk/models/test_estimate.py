"""Shares with their interval: Wilson against published values and scipy, the printed form."""

from __future__ import annotations

import pytest

from edgeship.models.estimate import percent, share_interval, share_text, width_pp, wilson

NEWCOMBE_1998 = [  # Newcombe, Stat. Med. 17:857 (1998), table I, method 3 (Wilson, no CC)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_1998)
def test_wilson_matches_the_published_intervals(k: int, n: int, low: float, high: float) -> None:
    ci = wilson(k, n)
    assert ci.low == pytest.approx(low, abs=5e-5) and ci.high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(("k", "n"), [(51, 51), (522, 540), (5, 10), (0, 3), (499, 1000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    ci = wilson(k, n, confidence=0.9)
    assert ci.low == pytest.approx(ref.low, abs=1e-12)
    assert ci.high == pytest.approx(ref.high, abs=1e-12)


def test_wilson_ends_and_bad_counts() -> None:
    assert wilson(0, 20).low == 0.0 and wilson(20, 20).high == 1.0
    assert 0.8 < wilson(20, 20).low < 1.0
    with pytest.raises(ValueError, match="not in"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="n > 0"):
        wilson(0, 0)


def test_a_share_of_samples_prints_with_its_interval_and_count() -> None:
    assert share_text(1.0, 51) == "100 % [93.0, 100] n=51"
    assert share_text(522 / 540, 540) == "96.7 % [94.8, 97.9] n=540"
    assert share_text(0.0, 20) == "0 % [0, 16.1] n=20"


def test_share_interval_is_that_of_the_whole_count() -> None:
    ci = share_interval(522 / 540, 540)
    assert ci == wilson(522, 540)
    assert share_interval(None, 540) is None and share_interval(0.5, 0) is None
    assert width_pp(wilson(51, 51)) == pytest.approx(100 * (1 - wilson(51, 51).low))


def test_percent_never_rounds_a_partial_share_to_whole() -> None:
    assert percent(1.0) == "100" and percent(0.0) == "0"
    assert percent(0.9996) == "99.96" and percent(0.0004) == "0.04"
    assert percent(0.967) == "96.7"
