"""Data-parallel shards in this process's children: outputs, order, affinity, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.errors import InferenceError, InputError
from edgeship_runtime.parallel import ShardPool, WorkerCrashed, usable_cpus
from tests.models import FAIL_WIDTH
from tests.runtime.parallel.helpers import (
    alive,
    allowed_cpus,
    chain_reference,
    requests,
    shm_entries,
    wait_gone,
)

ONE_THREAD = SessionOptions(threads=1)


def _pids(pool: ShardPool) -> list[int]:
    return [int(w["pid"]) for w in pool.worker_info()]


def test_shards_give_the_unsharded_outputs_in_order_on_their_own_cores(chain_onnx: Path) -> None:
    reqs = requests(40)
    with ShardPool(str(chain_onnx), reqs[0], shards=2, options=ONE_THREAD, depth=4) as pool:
        infos = pool.worker_info()
        assert not shm_entries(os.getpid())  # unlinked as soon as every worker attached
        outputs = pool.map(reqs)
        result = pool.stream(reqs, 200)
        alone = pool.stream(reqs, 20, shards=[1])
        pids = _pids(pool)
        planned = [tuple(info["cpus"]) for info in infos]
        assert [allowed_cpus(pid) for pid in pids] == [list(p) for p in planned]
    cores = usable_cpus()
    if len(cores) >= 2:
        assert set(planned[0]).isdisjoint(planned[1])
    for req, out in zip(reqs, outputs, strict=True):
        expected = chain_reference(req["x"])
        np.testing.assert_allclose(out["y"], expected["y"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out["h1"], expected["h1"], rtol=1e-5, atol=1e-5)
    assert result.requests == 200 and set(result.route.tolist()) == {0, 1}
    assert (np.diff(result.stamps[:, 1:], axis=1) >= 0).all()  # start ≤ end ≤ collected
    assert set(alone.route.tolist()) == {1}
    assert wait_gone(pids) == [] and not shm_entries(os.getpid())


def test_a_large_batch_is_split_and_gathered_in_order(chain_onnx: Path) -> None:
    data = requests(1, batch=64)[0]["x"]
    reqs = [{"x": data[i : i + 4]} for i in range(0, 64, 4)]
    with ShardPool(str(chain_onnx), reqs[0], shards=2, options=ONE_THREAD) as pool:
        outputs = pool.map(reqs)
    gathered = np.concatenate([o["y"] for o in outputs])
    session = ort.InferenceSession(str(chain_onnx), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(gathered, session.run(["y"], {"x": data})[0], rtol=1e-5, atol=1e-5)


def test_a_killed_shard_fails_the_stream_cleanly(chain_onnx: Path) -> None:
    reqs = requests(8)
    pool = ShardPool(str(chain_onnx), reqs[0], shards=2, options=ONE_THREAD)
    pids = _pids(pool)
    killer = threading.Timer(0.3, os.kill, (pids[1], signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(WorkerCrashed, match=r"shard 1 .* killed by signal 9") as caught:
            pool.stream(reqs, 10_000_000)  # runs until the kill
    finally:
        killer.cancel()
        pool.close()
    assert caught.value.details["pid"] == pids[1]
    assert wait_gone(pids) == []
    assert not shm_entries(os.getpid())


def test_an_engine_error_in_a_shard_is_reported_with_its_name(failing_onnx: Path) -> None:
    bad = {"x": np.zeros((2, FAIL_WIDTH), np.float32)}  # the model only runs batch 1
    with pytest.raises(InferenceError, match=r"^shard 0: ONNX Runtime failed"):
        ShardPool(str(failing_onnx), bad, shards=2, options=ONE_THREAD)
    assert not shm_entries(os.getpid())


def test_requests_must_match_the_stream(chain_onnx: Path) -> None:
    reqs = requests(2)
    with (
        ShardPool(str(chain_onnx), reqs[0], shards=1, options=ONE_THREAD) as pool,
        pytest.raises(InputError, match=r"differs from the stream's float32\[1, 8\]"),
    ):
        pool.map(requests(1, batch=3))


SCRIPT = """
import sys
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.parallel import ShardPool
from tests.runtime.parallel.helpers import requests
if __name__ == "__main__":
    pool = ShardPool(sys.argv[1], requests(1)[0], shards=2, options=SessionOptions(threads=1))
    print(" ".join(str(w["pid"]) for w in pool.worker_info()), flush=True)
    sys.stdin.read()
"""


def test_workers_die_with_their_parent(chain_onnx: Path, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(SCRIPT)
    root = Path(__file__).resolve().parents[3]
    with subprocess.Popen(
        [sys.executable, str(script), str(chain_onnx)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    ) as parent:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        parent.kill()
        parent.wait()
    assert wait_gone(pids) == []
    assert not shm_entries(parent.pid)


UNGUARDED = """
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.parallel import ShardPool
from tests.runtime.parallel.helpers import requests
with ShardPool(MODEL, requests(1)[0], shards=2, options=SessionOptions(threads=1)) as pool:
    print(len(pool.map(requests(6))))
"""


def test_workers_need_nothing_from_the_parents_main(chain_onnx: Path) -> None:
    """A script on stdin (or a notebook, or one without a main guard) cannot be re-run by
    ``spawn`` in the children; the workers must not need it."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-"],
        input=UNGUARDED.replace("MODEL", repr(str(chain_onnx))),
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6"]


def test_a_shard_killed_before_its_first_request_is_reported_as_killed(
    chain_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a loaded machine can let a kill land between start-up and the first probe: the
    # parent's write then breaks the pipe before it sees the process gone
    from edgeship_runtime.parallel.group import WorkerGroup

    ready = WorkerGroup._await_ready
    pids: list[int] = []

    def ready_then_kill(group: WorkerGroup) -> None:
        ready(group)
        victim = group.workers[1].process
        pids.extend(w.process.pid for w in group.workers)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=10)

    monkeypatch.setattr(WorkerGroup, "_await_ready", ready_then_kill)
    with pytest.raises(WorkerCrashed, match=r"shard 1 .* killed by signal 9"):
        ShardPool(str(chain_onnx), requests(1)[0], shards=2, options=ONE_THREAD)
    assert wait_gone(pids) == []
