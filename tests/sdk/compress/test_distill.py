from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.compress import (
    CompressOptions,
    Dataset,
    DistillConfig,
    GuardPolicy,
    TrainConfig,
    distill,
)
from edgeship.compress.training.torch_model import TorchModel
from edgeship.core.errors import UsageError
from tests.sdk.compress.conftest import accuracy
from tools.zoo.build import Manifest


def test_narrow_copy_of_an_onnx_teacher(
    zoo: Manifest, small_train: Dataset, test_data: Dataset, tmp_path: Path
) -> None:
    config = DistillConfig(
        width=0.25, train=TrainConfig(epochs=6, lr=3e-3, alpha=0.7, val_fraction=0.2)
    )
    result = distill(zoo.path("mlp.onnx"), config, small_train, tmp_path / "s.onnx")
    rec = result.report
    assert rec.model.parameters < 0.2 * rec.base.parameters
    assert rec.details["training"]["epochs"] == 6
    assert "graph surgery" in rec.details["student"]
    assert accuracy(result.path, test_data) >= 0.9


def test_user_student_on_unlabelled_data_with_early_stop(
    zoo: Manifest, small_train: Dataset, tmp_path: Path
) -> None:
    unlabelled = Dataset(small_train.feeds)
    teacher = TorchModel("tools.zoo.models:cnn", zoo.path("cnn.pt"))
    config = DistillConfig(
        student="tools.zoo.models:mlp",
        train=TrainConfig(epochs=20, lr=3e-3, target_accuracy=0.8, val_fraction=0.2),
    )
    keep = CompressOptions(guard=GuardPolicy(allow_degraded=True))  # the MLP student is
    rec = distill(teacher, config, unlabelled, tmp_path / "s.onnx", keep).report  # larger
    assert any(n.startswith("warning: the result is LARGER than its base") for n in rec.notes)
    training = rec.details["training"]
    assert training["metric"] == "agreement" and training["stopped"] == "target"
    assert training["epochs"] < 20 and training["history"][-1] >= 0.8
    assert rec.fidelity is not None and rec.fidelity.accuracy is None
    assert rec.fidelity.top1_agreement >= 0.75


def test_tflite_teacher_needs_a_student(
    zoo: Manifest, small_train: Dataset, tmp_path: Path
) -> None:
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo was built without litert-torch")
    with pytest.raises(UsageError, match="needs a student"):
        distill(zoo.path("cnn.tflite"), DistillConfig(), small_train.take(8), tmp_path / "s.onnx")
