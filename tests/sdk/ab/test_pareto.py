"""The Pareto front over latency, size, memory and accuracy; its plot's share axis."""

from __future__ import annotations

import numpy as np

from edgeship.ab._analyze import analyze
from edgeship.ab.pareto import (
    ACCURACY,
    LATENCY,
    MEMORY,
    SIZE,
    dominates,
    front,
    model_front,
    slower_and_larger,
)
from edgeship.ab.stats import StatsPolicy
from tests.sdk.ab import fakes


def test_dominance() -> None:
    objectives = [LATENCY, ACCURACY]
    assert dominates([1.0, 0.9], [2.0, 0.9], objectives)
    assert dominates([1.0, 0.95], [1.0, 0.9], objectives)
    assert not dominates([1.0, 0.9], [1.0, 0.9], objectives)  # equal: neither
    assert not dominates([1.0, 0.8], [2.0, 0.9], objectives)  # a trade-off


def test_front_keeps_trade_offs_and_ties() -> None:
    objectives = [LATENCY, SIZE]
    points = [[10.0, 100.0], [5.0, 100.0], [5.0, 100.0], [20.0, 10.0], [30.0, 50.0]]
    assert front(points, objectives) == [1, 2, 3]
    assert front([], objectives) == []


def _models(accuracy: bool) -> list:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    good = np.eye(3)[labels]
    bad = np.eye(3)[(labels + 1) % 3]
    runs = [
        fakes.model_run("base", fakes.latencies(rng, 10.0), "base", 4000, 120.0, good, labels),
        fakes.model_run("small", fakes.latencies(rng, 9.0), "variant", 1000, 100.0, bad, labels),
        fakes.model_run("fast", fakes.latencies(rng, 4.0), "variant", 2000, 110.0, good, labels),
    ]
    if not accuracy:
        for run in runs:
            run.labels = None
    device = analyze(fakes.device_run("pi", runs), StatsPolicy())
    return device.models


def test_model_front_uses_accuracy_when_every_model_has_it() -> None:
    models = _models(accuracy=True)
    # fast beats base everywhere; small is smallest but least accurate: a trade-off
    assert model_front(models) == ["small", "fast"]


def test_model_front_without_accuracy() -> None:
    models = _models(accuracy=False)
    assert model_front(models) == ["small", "fast"]
    models[1].memory = None
    assert MEMORY.name == "peak_rss_mb"
    assert model_front(models) == ["small", "fast"]


def test_a_variant_slower_and_larger_than_its_base_is_never_on_the_front() -> None:
    """It uses the least memory, so no other model dominates it; it is still no way to
    deploy the model."""
    rng = np.random.default_rng(1)
    runs = [
        fakes.model_run("base", fakes.latencies(rng, 10.0), "base", 4000, 120.0),
        fakes.model_run("bloated", fakes.latencies(rng, 14.0), "variant", 5000, 60.0),
        fakes.model_run("fast", fakes.latencies(rng, 4.0), "variant", 2000, 130.0),
    ]
    device = analyze(fakes.device_run("pi", runs), StatsPolicy())
    assert model_front(device.models) == ["base", "fast"]
    assert slower_and_larger(14.0, 5000, 10.0, 4000)
    assert not slower_and_larger(14.0, 3000, 10.0, 4000)  # a trade-off: smaller
