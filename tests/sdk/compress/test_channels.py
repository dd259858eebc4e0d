from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.compress import (
    ChannelPruneConfig,
    CompressOptions,
    Dataset,
    GuardPolicy,
    NothingToPrune,
    TrainConfig,
    prune_channels,
)
from tests import models as tiny
from tests.sdk.compress import models
from tests.sdk.compress.conftest import accuracy, ort_outputs
from tools.zoo.build import Manifest

KEEP_DEGRADED = CompressOptions(guard=GuardPolicy(allow_degraded=True))


def test_mlp_loses_half_its_neurons(zoo: Manifest, test_data: Dataset, tmp_path: Path) -> None:
    result = prune_channels(
        zoo.path("mlp.onnx"), ChannelPruneConfig(0.5), test_data, tmp_path / "s.onnx"
    )
    rec = result.report
    shapes = {t.name: list(t.dims) for t in onnx.load(str(result.path)).graph.initializer}
    assert shapes["1.weight"] == [512, 64] and shapes["3.weight"] == [256, 512]
    assert shapes["5.weight"] == [10, 256]
    assert rec.model.parameters < 0.4 * rec.base.parameters
    assert rec.latency is not None  # channel pruning always measures its speed
    assert rec.details["not_pruned"] == {"/5/Gemm": "it produces the model output 'logits'"}
    assert ort_outputs(result.path, test_data.take(4).feeds).shape == (4, 10)


@pytest.mark.parametrize("how", ["l2", "activation"])
def test_cnn_importances_with_fine_tuning(
    zoo: Manifest, small_train: Dataset, test_data: Dataset, tmp_path: Path, how: str
) -> None:
    config = ChannelPruneConfig(
        0.5, importance=how, samples=64, fine_tune=TrainConfig(epochs=1, lr=2e-3)
    )
    result = prune_channels(zoo.path("cnn.onnx"), config, small_train, tmp_path / "s.onnx")
    rec = result.report
    assert rec.details["layers"]["/3/body/body.0/Conv"] == {"channels": 96, "kept": 48}
    assert rec.details["layers"]["/0/Conv"] == {"channels": 96, "kept": 48}  # tied by the adds
    assert rec.model.parameters < 0.3 * rec.base.parameters
    assert accuracy(result.path, test_data) >= 0.85  # one quick epoch on 512 samples


def test_perturbation_importance(zoo: Manifest, test_data: Dataset, tmp_path: Path) -> None:
    config = ChannelPruneConfig(0.25, importance="perturbation", samples=160)
    result = prune_channels(zoo.path("mlp.onnx"), config, test_data, tmp_path / "s.onnx")
    assert result.report.details["layers"]["/1/Gemm"] == {"channels": 1024, "kept": 768}
    assert accuracy(result.path, test_data) >= 0.9


def test_residual_block_prunes_tied_channels_consistently(
    patterns: dict[str, Path], tmp_path: Path
) -> None:
    feeds = models.sample_inputs()
    result = prune_channels(  # random weights: the structure is tested, not the fidelity
        patterns["residual"], ChannelPruneConfig(0.5), feeds, tmp_path / "r.onnx", KEEP_DEGRADED
    )
    model = onnx.load(str(result.path))
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    half = models.CHANNELS // 2
    assert shapes["a_w"][0] == shapes["b_w"][0] == shapes["b_w"][1] == half
    assert shapes["dw_w"] == [half, 1, 3, 3] and shapes["scale"] == [1, half, 1, 1]
    dw = next(n for n in model.graph.node if n.name == "conv_dw")
    assert next(a.i for a in dw.attribute if a.name == "group") == half
    assert ort_outputs(result.path, feeds).shape == (16, models.CLASSES)


def test_zero_sparsity_on_a_residual_block_is_exact(
    patterns: dict[str, Path], tmp_path: Path
) -> None:
    feeds = models.sample_inputs()
    out = tmp_path / "same.onnx"
    from edgeship.models import onnx_graph
    from edgeship.compress.prune.channels import shrink

    model = onnx.load(str(patterns["residual"]))
    shrink(model, 0.0, "l1")
    onnx_graph.save(model, out)
    assert np.allclose(ort_outputs(out, feeds), ort_outputs(patterns["residual"], feeds), atol=1e-5)


def test_unprunable_layers_are_reported(patterns: dict[str, Path], tmp_path: Path) -> None:
    rec = prune_channels(
        patterns["concat"], ChannelPruneConfig(0.5), models.sample_inputs(), tmp_path / "c.onnx"
    ).report
    assert "conv_a" in rec.details["not_pruned"] and "conv_c" in rec.details["layers"]
    assert any("Concat" in n for n in rec.notes)


def test_nothing_prunable_is_said_before_ops_without_a_torch_view(tmp_path: Path) -> None:
    """Silero's main graph: its weights lie in If branches, and Equal has no torch view;
    what the user needs to hear is that nothing can be pruned."""
    path = models.weightless_output_and_mask(tmp_path / "masked.onnx")
    data = {"x": np.random.default_rng(0).random((16, 4), dtype=np.float32)}
    config = ChannelPruneConfig(0.5, fine_tune=TrainConfig(epochs=1))
    with pytest.raises(NothingToPrune, match="fc: it produces the model output"):
        prune_channels(path, config, data, tmp_path / "n.onnx")


def test_a_model_without_weights_says_which_ops_it_has(tmp_path: Path) -> None:
    model = tiny.add_model(tmp_path / "add.onnx")
    with pytest.raises(NothingToPrune, match=r"no Conv/Gemm/MatMul .*\(ops: \['Add'\]\)"):
        prune_channels(model, ChannelPruneConfig(0.5), None, tmp_path / "p.onnx")


def test_nothing_prunable_names_every_layer(patterns: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(NothingToPrune, match="fc: it produces the model output"):
        prune_channels(patterns["only_output"], ChannelPruneConfig(0.5), None, tmp_path / "n.onnx")
