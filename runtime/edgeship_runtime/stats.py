"""Summary statistics of latency samples (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .report import LatencyStats


def summarize_ms(samples_ms: Sequence[float]) -> LatencyStats:
    """n, mean, sample std, min, percentiles (linear interpolation) and max, in ms."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples to summarize")
    p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
    return LatencyStats(
        n=int(a.size),
        mean=float(a.mean()),
        std=float(a.std(ddof=1)) if a.size > 1 else 0.0,
        min=float(a.min()),
        p50=float(p50),
        p90=float(p90),
        p95=float(p95),
        p99=float(p99),
        max=float(a.max()),
    )


def throughput_ips(samples_ms: Sequence[float], batch: int) -> float:
    """Inferences (samples) per second over the summed run time."""
    total_s = float(np.sum(samples_ms)) / 1000.0
    return batch * len(samples_ms) / total_s if total_s > 0 else 0.0
