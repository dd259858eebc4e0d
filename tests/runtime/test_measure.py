"""Measurement: the policy, the timing loop, and the report built from them."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.environment import pinned
from edgeship_runtime.errors import UsageError
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.measure import (
    DEFAULT_MIN_SECONDS,
    InterleavePolicy,
    MeasurePolicy,
    batch_size,
    interleave_runs,
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


def test_policy_defaults_to_a_second_of_timed_runs() -> None:
    assert MeasurePolicy() == MeasurePolicy(warmup=10, runs=100, min_seconds=DEFAULT_MIN_SECONDS)
    assert DEFAULT_MIN_SECONDS == 1.0


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
    record = MeasurePolicy(warmup=2, runs=3, min_seconds=0.5, steady=False, cpus=(1,)).record()
    assert (record.warmup, record.runs, record.min_seconds) == (2, 3, 0.5)
    assert (record.steady, record.cpus) == (False, [1])
    assert record.timer == "time.perf_counter_ns"


# -------------------------------------------------------------------------- timing loop


def test_sample_count_equals_runs() -> None:
    samples, outputs = time_runs(
        fake_model(CountingSession()), FEEDS, MeasurePolicy(runs=7, min_seconds=0)
    )
    assert len(samples) == 7
    assert all(s >= 0 for s in samples)
    np.testing.assert_array_equal(outputs[0], FEEDS["x"] * 2)


@pytest.mark.parametrize(("warmup", "untimed"), [(0, 1), (1, 1), (3, 3)])
def test_warmup_includes_the_timed_first_inference(warmup: int, untimed: int) -> None:
    session = CountingSession()
    model = fake_model(session)
    samples, _ = time_runs(model, FEEDS, MeasurePolicy(warmup=warmup, runs=5, min_seconds=0))
    assert session.calls == untimed + 5
    assert len(samples) == 5
    assert model.first_inference_ms is not None


class FakeClock:
    """A nanosecond clock that moves only when a fake session runs."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class TimedSession(CountingSession):
    """A session whose every run takes ``ms`` on ``clock``."""

    def __init__(self, clock: FakeClock, ms: float) -> None:
        super().__init__()
        self.clock, self.ns = clock, int(ms * 1e6)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self.clock.now += self.ns
        return super().run(feeds)


@pytest.mark.parametrize(
    ("ms", "runs", "min_seconds", "expected"),
    [
        (2.0, 1, 0.01, 5),  # the budget: 5 runs of 2 ms make 10 ms
        (3.0, 1, 0.01, 4),  # the run that crosses it is the last
        (1.0, 50, 0.01, 50),  # the count wins over a short budget
        (1.0, 7, 0.0, 7),  # no budget: the count alone
    ],
)
def test_the_window_is_sized_by_the_runs_own_time(
    ms: float, runs: int, min_seconds: float, expected: int
) -> None:
    clock = FakeClock()
    policy = MeasurePolicy(warmup=0, runs=runs, min_seconds=min_seconds)
    samples, _ = time_runs(fake_model(TimedSession(clock, ms)), FEEDS, policy, clock=clock)
    assert samples == [ms] * expected
    assert sum(samples) >= 1000 * min_seconds


def test_min_seconds_is_honoured_on_the_real_clock() -> None:
    policy = MeasurePolicy(warmup=0, runs=1, min_seconds=0.2)
    samples, _ = time_runs(fake_model(CountingSession()), FEEDS, policy)
    assert sum(samples) >= 200.0 and len(samples) > 1


def test_interleaved_rounds_go_on_until_every_model_has_its_budget() -> None:
    """A 1 ms model and a 4 ms one, blocks of 2 runs: a round gives them 2 and 8 ms, so
    the faster needs 10 rounds to reach 20 ms; both make the same rounds."""
    clock = FakeClock()
    models = [fake_model(TimedSession(clock, 1.0)), fake_model(TimedSession(clock, 4.0))]
    policy = InterleavePolicy(warmup=0, block=2, blocks=1, min_seconds=0.02)
    samples, rounds = interleave_runs(models, [FEEDS, FEEDS], policy, clock=clock)
    assert len(rounds) == 10 and [len(s) for s in samples] == [20, 20]
    assert sum(samples[0]) == pytest.approx(20.0) and sum(samples[1]) == pytest.approx(80.0)
    exact = InterleavePolicy(warmup=0, block=2, blocks=3)  # no budget: the rounds asked for
    assert len(interleave_runs(models, [FEEDS, FEEDS], exact, clock=clock)[1]) == 3


def test_gc_is_paused_while_timing_and_restored() -> None:
    session = CountingSession()
    assert gc.isenabled()
    time_runs(fake_model(session), FEEDS, MeasurePolicy(warmup=2, runs=3, min_seconds=0))
    assert session.gc_during == [True, True, False, False, False]
    assert gc.isenabled()


def test_samples_measure_the_run() -> None:
    class Sleepy(CountingSession):
        def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            time.sleep(0.005)
            return super().run(feeds)

    samples, _ = time_runs(
        fake_model(Sleepy()), FEEDS, MeasurePolicy(warmup=0, runs=3, min_seconds=0)
    )
    assert all(5.0 <= s < 500.0 for s in samples)


# ------------------------------------------------------------------------------ report


def test_profile_report_of_a_real_model(state_onnx: Path) -> None:
    model = load_model(str(state_onnx))
    feeds = generate_feeds(model.session.signature, {"x": (3, 4), "h_in": (3, 8)})
    report = profile(
        model, feeds, MeasurePolicy(warmup=2, runs=9, min_seconds=0), keep_samples=True
    )
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
    report = profile(
        model, generate_feeds(model.session.signature), MeasurePolicy(runs=3, min_seconds=0)
    )
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


# ---------------------------------------------------------------------------- pinning


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_pinned_moves_every_thread_and_puts_them_back() -> None:
    usable = os.sched_getaffinity(0)
    one = {max(usable)}
    with pinned(sorted(one)):
        assert os.sched_getaffinity(0) == one
    assert os.sched_getaffinity(0) == usable
    with pytest.raises(UsageError, match="are not usable here"), pinned([max(usable) + 1000]):
        pass
    with pinned(()):  # nothing asked: nothing moved
        assert os.sched_getaffinity(0) == usable
