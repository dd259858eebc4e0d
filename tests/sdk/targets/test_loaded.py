"""``Target.load`` → :class:`Loaded`: the typed session every per-model operation uses."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from edgeship.core.config import ProfileConfig
from edgeship.core.errors import RuntimeCrashed, UsageError
from edgeship.targets import LocalTarget
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import InterleavePolicy, MeasurePolicy

QUICK = ProfileConfig(
    policy=MeasurePolicy(warmup=1, runs=5, min_seconds=0), session=SessionOptions(threads=1)
)


def test_load_describes_the_model_and_runs_it(add_onnx: Path) -> None:
    with LocalTarget() as target, target.load(add_onnx, QUICK) as loaded:
        assert [s.name for s in loaded.signature.inputs] == ["x"]
        assert loaded.info.format == "onnx" and loaded.backend.name == "onnxruntime"
        y = loaded.run({"x": np.zeros((3, 4), np.float32)})["y"]
        report = loaded.profile()
    np.testing.assert_array_equal(y, np.ones((3, 4), np.float32))
    assert report.latency_ms.n == 5 and report.model.path == str(add_onnx)


def test_leaving_the_block_unloads(add_onnx: Path) -> None:
    with LocalTarget() as target:
        with target.load(add_onnx, QUICK) as loaded:
            pass
        with pytest.raises(UsageError, match=f"no loaded model with handle '{loaded.handle}'"):
            loaded.run({"x": np.zeros((1, 4), np.float32)})


def test_interleave_times_every_model_in_one_process(add_onnx: Path) -> None:
    policy = InterleavePolicy(warmup=1, block=3, blocks=4, seed=7)
    feeds = [{"x": np.zeros((1, 4), np.float32)}] * 2
    target = LocalTarget()
    with target, target.load(add_onnx, QUICK) as a, target.load(add_onnx, QUICK) as b:
        done = target.interleave([a, b], policy, feeds)
    assert [len(s) for s in done.samples_ms] == [12, 12]
    assert len(done.rounds) == 4 and all(sorted(r) == [0, 1] for r in done.rounds)
    assert done.wall_s > 0 and target.runtime_starts == 1


def test_interleave_refuses_a_model_of_another_target(add_onnx: Path) -> None:
    with (
        LocalTarget() as one,
        LocalTarget() as other,
        one.load(add_onnx, QUICK) as a,
        other.load(add_onnx, QUICK) as b,
        pytest.raises(UsageError, match="loaded on this target"),
    ):
        one.interleave([a, b], InterleavePolicy())


def test_a_crash_inside_the_block_is_the_error_reported(add_onnx: Path) -> None:
    """No unload is sent to the dead runtime, and the crash is not masked by one."""
    target = LocalTarget()
    with target, pytest.raises(RuntimeCrashed), target.load(add_onnx, QUICK) as loaded:
        os.kill(target.client().hello["pid"], signal.SIGKILL)
        loaded.run({"x": np.zeros((1, 4), np.float32)})
    with target:
        assert target.profile(add_onnx, QUICK).latency_ms.n == 5  # a fresh runtime
        assert target.runtime_starts == 2
