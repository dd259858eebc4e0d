from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgeship.compress import ChannelPruneConfig, Dataset, TrainConfig, prune_channels
from edgeship.compress.training.torch_model import TorchModel
from tests.sdk.compress.conftest import accuracy
from tools.zoo.build import Manifest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch_pruning") is None, reason="torch-pruning is not installed"
)


@pytest.mark.parametrize("how", ["l1", "activation"])
def test_torch_cnn_with_dependency_graph_and_fine_tuning(
    zoo: Manifest, small_train: Dataset, test_data: Dataset, tmp_path: Path, how: str
) -> None:
    source = TorchModel("tools.zoo.models:cnn", zoo.path("cnn.pt"))
    config = ChannelPruneConfig(
        0.5, importance=how, samples=64, fine_tune=TrainConfig(epochs=1, lr=2e-3)
    )
    result = prune_channels(source, config, small_train, tmp_path / "t.onnx")
    rec = result.report
    assert rec.details["tool"] == "torch-pruning"
    assert rec.details["layers"]["3.body.0"] == {"before": 96, "after": 48}
    assert rec.details["layers"]["9"] == {"before": 10, "after": 10}  # the output layer
    assert rec.model.parameters < 0.3 * rec.base.parameters
    assert Path(rec.base.path) == tmp_path / "t.base.onnx"
    assert accuracy(result.path, test_data) >= 0.85


def test_the_sparsity_search_prunes_the_torch_model_at_what_holds(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    source = TorchModel("tools.zoo.models:mlp", zoo.path("mlp.pt"))
    config = ChannelPruneConfig(0.9, sparsity_search=True)
    rec = prune_channels(source, config, test_data.take(120), tmp_path / "t.onnx").report
    searched = rec.details["sparsity_search"]
    assert searched["tries"][0]["collapsed"] and 0 < searched["kept"] < 0.9
    assert rec.details["sparsity"] == searched["kept"]
    after = rec.details["layers"]["1"]["after"]  # torch-pruning's own rounding
    assert after == pytest.approx(1024 * (1 - searched["kept"]), abs=2)
    assert any(n.startswith("sparsity search: 0.9 collapsed") for n in rec.notes)
