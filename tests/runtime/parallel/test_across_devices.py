"""``run_sharded``: a data set across several targets (local runtimes stand in for boards)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edgeship.core.errors import InputError, TargetError
from edgeship.targets.shard import ShardError, chunk_bounds, run_sharded
from edgeship.targets import wire
from edgeship.targets.local import LocalTarget
from tests.runtime.parallel.helpers import requests


class CrashingTarget(LocalTarget):
    """A local runtime that is killed (as by the OOM killer) on its ``crash_on``-th run."""

    def __init__(self, crash_on: int) -> None:
        super().__init__()
        self.name = f"crashes-on-{crash_on}"
        self.crash_on = crash_on
        self.runs = 0

    def request(self, request: wire.Request) -> Any:
        if request.op == "run":
            self.runs += 1
            if self.runs == self.crash_on:
                os.kill(int(self.client().hello["pid"]), signal.SIGKILL)
        return super().request(request)


class SlowTarget(LocalTarget):
    """A local runtime that takes 20 ms longer per run: the other device surely gets work."""

    def request(self, request: wire.Request) -> Any:
        if request.op == "run":
            time.sleep(0.02)
        return super().request(request)


def _data(n: int) -> dict[str, np.ndarray]:
    return {"x": requests(1, batch=n, seed=5)[0]["x"], "labels": np.arange(n)}


def _expected(model: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(str(model)).run(["y"], {"x": data["x"]})[0]


def test_chunks_cover_the_data_in_order() -> None:
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(3, 5) == [(0, 3)]


def test_a_data_set_is_split_across_devices_and_gathered_in_order(chain_onnx: Path) -> None:
    data = _data(203)
    done = run_sharded(chain_onnx, [LocalTarget(), LocalTarget()], data, request_batch=1)
    np.testing.assert_allclose(done.outputs["y"], _expected(chain_onnx, data), rtol=1e-5, atol=1e-5)
    assert done.samples == 203 == sum(d.samples for d in done.devices)
    assert all(d.chunks > 0 and d.error is None for d in done.devices)
    assert done.throughput_ips > 0 and done.reruns == 0
    assert done.to_dict()["outputs"]["y"] == {"shape": [203, 4], "dtype": "float32"}


def test_a_device_that_cannot_start_leaves_its_share_to_the_others(chain_onnx: Path) -> None:
    data = _data(40)
    broken = LocalTarget(python="/nonexistent/python3")
    done = run_sharded(chain_onnx, [broken, LocalTarget()], data, chunk=8)
    np.testing.assert_allclose(done.outputs["y"], _expected(chain_onnx, data), rtol=1e-5, atol=1e-5)
    assert done.devices[0].error and "cannot start the runtime" in done.devices[0].error
    assert done.devices[1].samples == 40


def test_a_device_that_dies_mid_run_has_its_chunk_rerun(chain_onnx: Path) -> None:
    data = _data(64)
    crashing = CrashingTarget(crash_on=1)
    done = run_sharded(chain_onnx, [crashing, SlowTarget()], data, chunk=8, request_batch=4)
    np.testing.assert_allclose(done.outputs["y"], _expected(chain_onnx, data), rtol=1e-5, atol=1e-5)
    assert done.reruns == 1 and "died" in (done.devices[0].error or "")
    assert done.devices[0].samples == 0 and done.devices[1].samples == 64


def test_when_every_device_fails_each_error_is_named(chain_onnx: Path) -> None:
    targets = [LocalTarget(python="/nonexistent/a"), CrashingTarget(crash_on=1)]
    with pytest.raises(ShardError, match="every device failed") as caught:
        run_sharded(chain_onnx, targets, _data(16), chunk=8)
    assert set(caught.value.errors) == {"local", "crashes-on-1"}
    assert isinstance(caught.value, TargetError)


def test_bad_inputs_stop_every_device_at_once(chain_onnx: Path) -> None:
    with pytest.raises(InputError):
        run_sharded(
            chain_onnx, [LocalTarget(), LocalTarget()], {"wrong": np.zeros((8, 8), np.float32)}
        )
    with pytest.raises(InputError, match="leading"):
        run_sharded(chain_onnx, [LocalTarget()], {"x": np.zeros((4, 8)), "z": np.zeros((5, 8))})
