"""Memory figures, and the honesty check of the peak: a real allocation must show up."""

from __future__ import annotations

import numpy as np
import pytest

from edgeship_runtime import memory
from edgeship_runtime.memory import PeakRss, current_rss_mb

MB = 2**20


def test_current_rss_is_plausible() -> None:
    assert 10.0 < current_rss_mb() < 64 * 1024.0


def test_peak_is_at_least_current() -> None:
    peak = PeakRss()
    peak.start()
    assert peak.peak_mb() >= current_rss_mb() - 1.0


@pytest.mark.skipif(not memory._reset_vmhwm(), reason="VmHWM cannot be reset here (not Linux?)")
def test_peak_sees_a_200_mb_allocation_inside_the_window() -> None:
    peak = PeakRss()
    peak.start()
    assert peak.method.startswith("VmHWM")
    before = peak.peak_mb()
    block = np.ones(200 * MB, dtype=np.uint8)  # ones, not zeros: every page is touched
    assert int(block[::4096].sum()) == block[::4096].size
    del block
    after_free = current_rss_mb()
    grown = peak.peak_mb() - before
    assert 190.0 <= grown <= 260.0, f"peak grew {grown:.1f} MB for a 200 MB allocation"
    assert peak.peak_mb() - after_free >= 150.0  # the peak remembers what was freed


@pytest.mark.skipif(not memory._reset_vmhwm(), reason="VmHWM cannot be reset here (not Linux?)")
def test_start_resets_an_old_peak() -> None:
    block = np.ones(100 * MB, dtype=np.uint8)
    del block
    peak = PeakRss()
    peak.start()
    assert peak.peak_mb() - current_rss_mb() < 50.0


def test_fallback_names_the_lifetime_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_reset_vmhwm", lambda: False)
    peak = PeakRss()
    peak.start()
    assert peak.method == "ru_maxrss (peak over the process lifetime)"
    assert peak.peak_mb() >= current_rss_mb() - 1.0
