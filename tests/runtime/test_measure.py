"""Measurement: the policy, the timing loop, and the report built from them."""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.errors import UsageError
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.measure import (
    MeasurePolicy,
    batch_size,
    profile,
    summarize_tensor,
    time_runs,
)
from edgeship_runtime.model import LoadedModel, load_model
from edgeship_runtime.report import BackendUsage, ModelInfo
from edgeship_runtime.signature import Signature, TensorSpec

SIG = Signature((TensorSpec("x", (1,), "float32"),), (TensorSpec("y", (1,), "float32"),))


class CountingSession:
    """A session that records each call and whether the GC was on during it."""

    signature = SIG

    def __init__(self) -> None:
        self.calls = 0
        self.gc_during: list[bool] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        self.gc_during.append(gc.isenabled())
        return [feeds["x"] * 2]

    def execution(self) -> dict[str, list[str]]:
        return {"providers": []}

    def close(self) -> None:
        pass


def fake_model(session: CountingSession) -> LoadedModel:
    return LoadedModel(
        info=ModelInfo("fake.onnx", "0" * 64, "onnx", 1),
        backend=BackendUsage("fake", "0", 0),
        session=session,
        load_ms=1.0,
        rss_before_load_mb=1.0,
        rss_after_load_mb=1.0,
        load_peak_mb=1.0,
        memory_method="test",
    )


FEEDS = {"x": np.ones(1, np.float32)}


# ------------------------------------------------------------------------------ policy


def test_policy_defaults() -> None:
    assert MeasurePolicy() == MeasurePolicy(warmup=10, runs=100, min_seconds=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runs": 0}, "runs must be at least 1, got 0"),
        ({"warmup": -1}, "warmup must be 0 or more, got -1"),
        ({"min_seconds": -0.5}, "min_seconds must be 0 or more, got -0.5"),
    ],
)
def test_policy_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        MeasurePolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_record() -> None:
    record = MeasurePolicy(warmup=2, runs=3, min_seconds=0.5).record()
    assert (record.warmup, record.runs, record.min_seconds) == (2, 3, 0.5)
    assert record.timer == "time.perf_counter_ns"


# -------------------------------------------------------------------------- timing loop


def test_sample_count_equals_runs() -> None:
    samples, outputs = time_runs(fake_model(CountingSession()), FEEDS, MeasurePolicy(runs=7))
    assert len(samples) == 7
    assert all(s >= 0 for s in samples)
    np.testing.assert_array_equal(outputs[0], FEEDS["x"] * 2)


@pytest.mark.parametrize(("warmup", "untimed"), [(0, 1), (1, 1), (3, 3)])
def test_warmup_includes_the_timed_first_inference(warmup: int, untimed: int) -> None:
    session = CountingSession()
    model = fake_model(session)
    samples, _ = time_runs(model, FEEDS, MeasurePolicy(warmup=warmup, runs=5))
    assert session.calls == untimed + 5
    assert len(samples) == 5
    assert model.first_inference_ms is not None


def test_min_seconds_is_honoured() -> None:
    policy = MeasurePolicy(warmup=0, runs=1, min_seconds=0.2)
    t0 = time.perf_counter()
    samples, _ = time_runs(fake_model(CountingSession()), FEEDS, policy)
    assert time.perf_counter() - t0 >= 0.2
    assert len(samples) > 1


def test_runs_win_over_a_short_min_seconds() -> None:
    samples, _ = time_runs(
        fake_model(CountingSession()), FEEDS, MeasurePolicy(runs=50, min_seconds=1e-9)
    )
    assert len(samples) == 50


def test_gc_is_paused_while_timing_and_restored() -> None:
    session = CountingSession()
    assert gc.isenabled()
    time_runs(fake_model(session), FEEDS, MeasurePolicy(warmup=2, runs=3))
    assert session.gc_during == [True, True, False, False, False]
    assert gc.isenabled()


def test_samples_measure_the_run() -> None:
    class Sleepy(CountingSession):
        def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            time.sleep(0.005)
            return super().run(feeds)

    samples, _ = time_runs(fake_model(Sleepy()), FEEDS, MeasurePolicy(warmup=0, runs=3))
    assert all(5.0 <= s < 500.0 for s in samples)


# ------------------------------------------------------------------------------ report


def test_profile_report_of_a_real_model(state_onnx: Path) -> None:
    model = load_model(str(state_onnx))
    feeds = generate_feeds(model.session.signature, {"x": (3, 4), "h_in": (3, 8)})
    report = profile(model, feeds, MeasurePolicy(warmup=2, runs=9), keep_samples=True)
    assert report.latency_ms.n == 9
    assert report.samples_ms is not None and len(report.samples_ms) == 9
    assert report.latency_ms.min == min(report.samples_ms)
    assert report.batch_size == 3
    assert report.throughput_ips > 0
    assert report.first_inference_ms == model.first_inference_ms
    assert [(t.name, t.shape, t.all_finite) for t in report.outputs] == [
        ("y", [3, 2], True),
        ("h_out", [3, 8], True),
    ]
    assert [(t.name, t.all_finite) for t in report.inputs] == [("x", None), ("h_in", None)]
    assert report.memory_mb.peak_rss >= report.memory_mb.rss_after_load * 0.99
    assert report.memory_mb.load_delta == pytest.approx(
        report.memory_mb.rss_after_load - report.memory_mb.rss_before_load
    )


def test_profile_without_samples(add_onnx: Path) -> None:
    model = load_model(str(add_onnx))
    report = profile(model, generate_feeds(model.session.signature), MeasurePolicy(runs=3))
    assert report.samples_ms is None


def test_batch_size() -> None:
    assert batch_size({"x": np.zeros((4, 3))}) == 4
    assert batch_size({"ids": np.zeros(5), "x": np.zeros((2, 3))}) == 2
    assert batch_size({"scalar": np.zeros(())}) == 1


def test_summarize_tensor_flags_non_finite_floats() -> None:
    assert summarize_tensor("a", np.array([1.0, np.nan])).all_finite is False
    assert summarize_tensor("a", np.array([1.0, np.inf], np.float32)).all_finite is False
    assert summarize_tensor("a", np.array([1.0])).all_finite is True
    assert summarize_tensor("a", np.array([1, 2])).all_finite is None
    assert summarize_tensor("a", np.array([1.0]), finite=False).all_finite is None
