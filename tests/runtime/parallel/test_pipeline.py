"""Pipelines of stage processes: identical to the unsplit model, in order; failures."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.errors import ModelError
from edgeship_runtime.parallel import Pipeline, WorkerCrashed, read_manifest
from tests.runtime.parallel.helpers import allowed_cpus, requests, shm_entries, wait_gone

ONE_THREAD = SessionOptions(threads=1)


@pytest.mark.parametrize("stages", ["chain_stages", "chain_stages_3"])
def test_pipeline_outputs_equal_the_unsplit_model(
    stages: str, chain_onnx: Path, request: pytest.FixtureRequest
) -> None:
    plan = read_manifest(str(request.getfixturevalue(stages)))
    reqs = requests(50, batch=2)
    with Pipeline(plan.stages, reqs[0], outputs=plan.outputs, options=ONE_THREAD, depth=4) as pipe:
        outputs = pipe.map(reqs)
        result = pipe.stream(reqs, 100)
        infos = pipe.worker_info()
        pids = [int(w["pid"]) for w in infos]
        assert [allowed_cpus(p) for p in pids] == [list(w["cpus"]) for w in infos]
    unsplit = ort.InferenceSession(str(chain_onnx), providers=["CPUExecutionProvider"])
    for req, out in zip(reqs, outputs, strict=True):
        y, h1 = unsplit.run(["y", "h1"], req)
        assert list(out) == ["y", "h1"]
        np.testing.assert_allclose(out["y"], y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out["h1"], h1, rtol=1e-5, atol=1e-5)
    k = len(plan.stages)
    assert result.stamps.shape == (100, 1 + 2 * k + 1)  # handed over, start/end each, back
    assert (np.diff(result.stamps, axis=1) >= 0).all()  # every stage after the one before
    assert wait_gone(pids) == [] and not shm_entries(os.getpid())


@pytest.mark.parametrize("victim", [0, 2])
def test_a_killed_stage_fails_the_pipeline_cleanly(victim: int, chain_stages_3: Path) -> None:
    """The error names the stage that died, not the neighbours that stopped with it."""
    plan = read_manifest(str(chain_stages_3))
    reqs = requests(4)
    pipe = Pipeline(plan.stages, reqs[0], options=ONE_THREAD)
    pids = [int(w["pid"]) for w in pipe.worker_info()]
    killer = threading.Timer(0.3, os.kill, (pids[victim], signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(WorkerCrashed, match=f"^stage {victim} .* killed by signal 9"):
            pipe.stream(reqs, 10_000_000)
    finally:
        killer.cancel()
        pipe.close()
    assert wait_gone(pids) == [] and not shm_entries(os.getpid())


def test_stages_that_do_not_connect_are_refused(chain_stages_3: Path) -> None:
    plan = read_manifest(str(chain_stages_3))
    wrong_order = [plan.stages[1], plan.stages[0], plan.stages[2]]
    with pytest.raises(ModelError, match=r"stage 0 needs \['h1'\]"):
        Pipeline(wrong_order, requests(1)[0], options=ONE_THREAD)
    assert not shm_entries(os.getpid())
