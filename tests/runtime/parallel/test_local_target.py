"""Shards and pipelines through ``LocalTarget``: the real zipapp, the real protocol.

Workers are spawned by a runtime that runs from ``edgeship-runtime.pyz``, so these tests
are what proves that worker processes can import the runtime from the zipapp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgeship
from edgeship.core.config import ProfileConfig
from edgeship.targets.local import LocalTarget
from edgeship.targets.shard import ParallelConfig, describe_parallel, profile_parallel
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.parallel import WorkerCrashed
from edgeship_runtime.report import ProfileReport
from tests.runtime.parallel.helpers import children, requests, shm_entries, wait_gone
from tests.runtime.test_py39 import python39  # noqa: F401  (a fixture)


def test_profile_with_shards_reports_the_stream(chain_onnx: Path) -> None:
    report = edgeship.profile(chain_onnx, shards=2, runs=300, warmup=2, threads=1, min_seconds=0)
    p = report.parallel
    assert p is not None and p.mode == "shards" and p.n_workers == 2
    assert p.requests == 300 == sum(w.requests for w in p.workers)
    assert report.latency_ms.n == 300 and report.throughput_ips == pytest.approx(p.throughput_ips)
    assert p.baseline is not None and p.baseline.description.startswith("one shard")
    assert p.scaling_efficiency is not None and p.speedup is not None
    assert p.check is not None and p.check.ok and (p.check.max_abs_diff or 0.0) <= 1e-5
    assert all(0 < w.utilisation <= 1 and w.backend.threads == 1 for w in p.workers)
    assert all(w.latency_ms is not None and w.queue_ms is not None for w in p.workers)
    if len(os.sched_getaffinity(0)) >= 2:
        assert set(p.workers[0].cpus).isdisjoint(p.workers[1].cpus)
    assert ProfileReport.from_json(report.to_json()) == report
    assert "scaling efficiency" in describe_parallel(report)


def test_profile_a_pipeline_from_a_partition_directory(
    chain_onnx: Path, chain_stages: Path
) -> None:
    report = edgeship.profile(
        chain_onnx, pipeline=chain_stages, runs=200, warmup=2, threads=1, min_seconds=0
    )
    p = report.parallel
    assert p is not None and p.mode == "pipeline" and [w.role for w in p.workers] == ["stage"] * 2
    assert [Path(w.model_path).name for w in p.workers] == ["stage_0.onnx", "stage_1.onnx"]
    assert p.check is not None and p.check.ok, p.check
    assert p.baseline is not None and "unsplit" in p.baseline.description
    assert p.speedup is not None and p.speedup > 0
    assert [o.name for o in report.outputs] == ["y", "h1"]
    assert ProfileReport.from_dict(json.loads(report.to_json())) == report


def test_run_on_shards_and_as_requests_gives_the_unsharded_outputs(chain_onnx: Path) -> None:
    data = requests(1, batch=37, seed=3)[0]
    expected = ort.InferenceSession(str(chain_onnx)).run(["y", "h1"], data)
    config = ProfileConfig(session=SessionOptions(threads=1))
    with LocalTarget() as target, target.load(chain_onnx, config) as loaded:
        for extra in ({"shards": 2, "request_batch": 4}, {"shards": 0}, {"request_batch": 1}):
            outputs = loaded.run(data, **extra)
            np.testing.assert_allclose(outputs["y"], expected[0], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(outputs["h1"], expected[1], rtol=1e-5, atol=1e-5)


def _workers_of(runtime: int) -> list[int]:
    def spawned(pid: int) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    return [pid for pid in children(runtime) if spawned(pid)]


def test_a_killed_worker_fails_the_profile_and_the_runtime_lives_on(chain_onnx: Path) -> None:
    config = ProfileConfig(
        policy=MeasurePolicy(runs=10_000_000, warmup=1), session=SessionOptions(threads=1)
    )
    with LocalTarget() as target:
        runtime = int(target.client().hello["pid"])
        seen: list[int] = []

        def kill_one() -> None:
            deadline = time.monotonic() + 60
            while len(seen) < 2 and time.monotonic() < deadline:
                seen[:] = _workers_of(runtime)
                time.sleep(0.05)
            time.sleep(0.3)
            os.kill(seen[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        with pytest.raises(WorkerCrashed, match="killed by signal 9"):
            profile_parallel(target, chain_onnx, config, ParallelConfig(shards=2, baseline=False))
        killer.join()
        assert wait_gone(seen) == [] and _workers_of(runtime) == []
        assert not shm_entries(runtime)
        assert target.info()["runtime"]["pid"] == runtime  # the same runtime still serves


def test_shards_on_python39_from_the_zipapp(python39: str, chain_onnx: Path) -> None:  # noqa: F811
    with LocalTarget(python=python39) as target:
        config = ProfileConfig(policy=MeasurePolicy(runs=100, warmup=1, min_seconds=0))
        report = profile_parallel(target, chain_onnx, config, ParallelConfig(shards=2))
    assert report.environment.python.startswith("3.9.")
    assert report.parallel is not None and report.parallel.check is not None
    assert report.parallel.check.ok and report.parallel.requests == 100


def test_cli_profile_shards_and_run_shard(chain_onnx: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "edgeship.cli.main"]
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [*base, "profile", str(chain_onnx), "--shards", "2", "--runs", "50", "--threads", "1",
         "--min-seconds", "0"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "shards: 2 workers, 50 requests" in done.stdout and "shard 1: cores" in done.stdout
    np.savez(tmp_path / "d.npz", x=requests(1, batch=30)[0]["x"], labels=np.arange(30))
    done = subprocess.run(
        [*base, "run", str(chain_onnx), "--inputs", str(tmp_path / "d.npz"), "--shard",
         "--out", str(tmp_path / "y.npz"), "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["samples"] == 30 and summary["devices"][0]["samples"] == 30
    with np.load(tmp_path / "y.npz") as out:
        assert out["y"].shape == (30, 4)


def test_cli_refuses_shards_with_a_pipeline(chain_onnx: Path, chain_stages: Path) -> None:
    from edgeship.cli.main import main

    assert main(["profile", str(chain_onnx), "--shards", "2", "--pipeline", str(chain_stages)]) == 2
