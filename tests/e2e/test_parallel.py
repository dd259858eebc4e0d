"""Sharded inference over real SSH: shards and a pipeline on a device, a data set across two."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeship.core.config import ProfileConfig
from edgeship.partition import PartitionConfig, partition
from edgeship.targets import LocalTarget, SSHTarget
from edgeship.targets.shard import ParallelConfig, profile_parallel
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy
from tests.e2e.conftest import cli
from tools.testbed import Testbed


def test_shards_and_a_pipeline_on_a_device(
    device_target: SSHTarget, zoo: Path, tmp_path: Path
) -> None:
    model = zoo / "cnn.onnx"
    stages = tmp_path / "cnn-2"
    with LocalTarget() as local:  # the stages that `edgeship partition` makes, verified
        partition(model, stages, local, PartitionConfig(stages=2))
    config = ProfileConfig(
        policy=MeasurePolicy(runs=300, warmup=2, min_seconds=0), session=SessionOptions(threads=1)
    )
    for parallel in (ParallelConfig(shards=2), ParallelConfig(pipeline=stages)):
        report = profile_parallel(device_target, model, config, parallel)
        p = report.parallel
        assert p is not None and p.n_workers == 2 and p.requests == 300
        assert p.check is not None and p.check.ok, p.check
        assert p.speedup is not None and all(w.requests > 0 for w in p.workers)
        assert report.target and report.target["kind"] == "ssh"
    assert [w.model_path.startswith("/home/") for w in p.workers] == [True, True]


def test_run_shard_splits_a_data_set_across_two_devices(
    clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    first, second = clean_testbed.devices[0].name, clean_testbed.devices[1].name
    out = tmp_path / "y.npz"
    done = cli(
        clean_testbed, "run", str(zoo / "cnn.onnx"), "--inputs", str(zoo / "digits_test.npz"),
        "--target", f"{first},{second}", "--shard", "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    with np.load(zoo / "digits_test.npz") as data:
        images = data["input"]
    assert summary["samples"] == len(images)
    assert [d["target"] for d in summary["devices"]] == [first, second]
    assert all(d["samples"] > 0 and d["error"] is None for d in summary["devices"])
    expected = ort.InferenceSession(str(zoo / "cnn.onnx")).run(None, {"input": images})[0]
    with np.load(out) as got:
        np.testing.assert_allclose(got["logits"], expected, rtol=1e-5, atol=1e-5)


def test_an_unreachable_device_has_its_share_run_by_the_other(
    clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    first, second = clean_testbed.devices[0], clean_testbed.devices[1]
    clean_testbed.blackhole(second)
    out = tmp_path / "y.npz"
    done = cli(
        clean_testbed, "run", str(zoo / "mlp.onnx"), "--inputs", str(zoo / "digits_test.npz"),
        "--target", f"{first.name},{second.name}", "--shard", "--out", str(out),
        "--connect-timeout", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"warning: {second.name}:" in done.stderr
    assert f"{first.name}: 360 samples" in done.stdout
    with np.load(out) as got:
        assert got["logits"].shape == (360, 10)
