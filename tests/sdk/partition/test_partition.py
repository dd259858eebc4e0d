"""``partition`` on the zoo: files, manifest, verification, and its refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeship.convert import VerifyData
from edgeship.core.errors import PartitionError, VerificationError
from edgeship.partition import PartitionConfig, PartitionManifest, partition
from edgeship.partition import _split as split_module
from edgeship.targets import LocalTarget
from edgeship_runtime.errors import UsageError
from tests.sdk.convert import graphs


@pytest.mark.parametrize("cost", ["flops", "profile"])
def test_cnn_in_three_stages(zoo, digits: Path, local: LocalTarget, tmp_path: Path, cost: str):
    out = tmp_path / "parts"
    config = PartitionConfig(stages=3, cost=cost, verify=VerifyData(data=digits, samples=64))
    manifest = partition(zoo.path("cnn.onnx"), out, local, config)
    assert [s.file for s in manifest.stages] == ["stage_00.onnx", "stage_01.onnx", "stage_02.onnx"]
    assert manifest.stages[0].inputs == ["input"] and manifest.stages[-1].outputs == ["logits"]
    assert sum(s.cost_share for s in manifest.stages) == pytest.approx(1.0, abs=1e-5)
    assert manifest.verification.passed and manifest.verification.samples == 64
    assert PartitionManifest.load(out) == manifest
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "stage_00.onnx",
        "stage_01.onnx",
        "stage_02.onnx",
    ]
    # the manifest alone is enough to run the pipeline
    x = np.load(digits)["input"][:5]
    env = {"input": x}
    for stage in manifest.stages:
        session = ort.InferenceSession(str(out / stage.file), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {n: env[n] for n in stage.inputs})
        env = dict(zip(stage.outputs, outputs, strict=True))
    want = ort.InferenceSession(str(zoo.path("cnn.onnx")), providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )[0]
    assert np.allclose(env["logits"], want, atol=1e-5)


def test_refusals(zoo, local: LocalTarget, tmp_path: Path) -> None:
    with pytest.raises(PartitionError, match="--stages 40 is more than this graph allows"):
        partition(zoo.path("cnn.onnx"), tmp_path, local, PartitionConfig(stages=40))
    with pytest.raises(UsageError, match="--stages must be at least 1"):
        PartitionConfig(stages=0)
    with pytest.raises(UsageError, match="--cost must be one of"):
        PartitionConfig(stages=2, cost="guess")
    if_model = graphs.if_model(tmp_path / "if.onnx")
    with pytest.raises(PartitionError, match="does not cut inside If/Loop/Scan"):
        partition(if_model, tmp_path / "p", local, PartitionConfig(stages=2))


def test_a_wrong_chain_leaves_nothing(
    zoo, local: LocalTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = split_module.ChainRunner.run

    def off_by_one(self, feeds):  # type: ignore[no-untyped-def]
        return {k: v + 1 for k, v in real(self, feeds).items()}

    monkeypatch.setattr(split_module.ChainRunner, "run", off_by_one)
    out = tmp_path / "parts"
    with pytest.raises(VerificationError, match="the 2 stages is not equivalent"):
        partition(zoo.path("mlp.onnx"), out, local, PartitionConfig(stages=2))
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_cli_partition(
    cli: Callable[..., int], zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parts"
    assert cli("partition", zoo.path("mlp.onnx"), "--stages", "2", "--out", out, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "edgeship.partition/1" and len(data["stages"]) == 2
    assert cli("partition", zoo.path("mlp.onnx"), "--stages", "2", "--out", out) == 0
    assert "2 stages by flops" in capsys.readouterr().out
    assert cli("partition", zoo.path("mlp.onnx"), "--stages", "99", "--out", out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --stages 99 is more than this graph")
