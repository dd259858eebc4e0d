"""The Pareto front over latency, size, memory and accuracy; its plot's share axis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgeship.ab import _plots as plots
from edgeship.ab._analyze import analyze
from edgeship.ab.pareto import ACCURACY, LATENCY, MEMORY, SIZE, dominates, front, model_front
from edgeship.ab.result import DeviceAB
from edgeship.ab.schedule import Schedule
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
    device = analyze(fakes.device_run("pi", runs), Schedule(runs=300), StatsPolicy())
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


def _drawn(monkeypatch: pytest.MonkeyPatch, device: DeviceAB) -> Any:
    """The Pareto figure of ``device``, as drawn (before it becomes a PNG)."""
    drawn: list[Any] = []
    monkeypatch.setattr(plots, "png", lambda fig: drawn.append(fig) or b"")
    plots.pareto_plot(device)
    return drawn[0].axes[0]


def test_an_accuracy_axis_is_named_so_and_never_passes_100_percent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("matplotlib")
    perfect = fakes.report(gates=False).devices[0]
    for m in perfect.models:  # every model right on every sample: the points sit at 100 %
        assert m.accuracy is not None
        m.accuracy.accuracy = 1.0
    ax = _drawn(monkeypatch, perfect)
    assert ax.get_ylabel() == "accuracy vs labels (%)"
    low, high = ax.get_ylim()
    assert 0.0 <= low < 100.0 and high == 100.0  # margins alone would carry it to ~100.0x


def test_percent_axis_bounds_any_share_to_0_100() -> None:
    figure = pytest.importorskip("matplotlib.figure")
    ax = figure.Figure().add_subplot()
    ax.scatter([1.0, 2.0, 3.0], [0.0, 50.0, 100.0])
    ax.margins(0.3)
    assert ax.get_ylim()[0] < 0.0 and ax.get_ylim()[1] > 100.0
    plots.percent_axis(ax, "top-1 agreement vs base (%)")
    assert ax.get_ylim() == (0.0, 100.0) and ax.get_ylabel() == "top-1 agreement vs base (%)"


def test_without_labels_the_axis_is_size_not_accuracy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    ax = _drawn(monkeypatch, fakes.report(gates=False, labelled=False).devices[0])
    assert ax.get_ylabel() == "size on disk (MiB)"
