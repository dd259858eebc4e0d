from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeship.compress import (
    Dataset,
    NothingToPrune,
    PruneConfig,
    QuantizeConfig,
    TrainConfig,
    prune,
    quantize,
)
from edgeship.core.errors import InputError
from edgeship.models.onnx_graph import weight_names
from tests import models as tiny
from tests.sdk.compress.conftest import accuracy
from tools.zoo.build import Manifest


def _weight_sparsity(path: Path) -> dict[str, float]:
    model = onnx.load(str(path))
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n: 1 - np.count_nonzero(values[n]) / values[n].size for n in weight_names(model)}


def test_global_magnitude_reaches_the_sparsity_and_deflates(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    result = prune(zoo.path("mlp.onnx"), PruneConfig(0.6), test_data, tmp_path / "p.onnx")
    rec = result.report
    assert rec.details["weight_sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert rec.model.sparsity == pytest.approx(0.6, abs=0.01)  # biases are few
    assert rec.model.compressed_size_bytes < 0.65 * rec.base.compressed_size_bytes
    assert rec.model.parameters == rec.base.parameters  # unstructured: same shapes
    assert rec.fidelity is not None and rec.fidelity.accuracy_drop_pt is not None
    assert rec.fidelity.accuracy_drop_pt <= 2.0
    assert accuracy(result.path, test_data) == pytest.approx(rec.fidelity.accuracy)


def test_layer_scope_prunes_every_layer_alike(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "p.onnx"
    prune(zoo.path("cnn.onnx"), PruneConfig(0.5, scope="layer"), test_data, out)
    assert all(s == pytest.approx(0.5, abs=0.01) for s in _weight_sparsity(out).values())


@pytest.mark.parametrize("how", ["gradient", "perturbation"])
def test_data_driven_importance(
    zoo: Manifest, small_train: Dataset, test_data: Dataset, tmp_path: Path, how: str
) -> None:
    config = PruneConfig(0.5, importance=how, samples=128)
    rec = prune(zoo.path("mlp.onnx"), config, small_train, tmp_path / "p.onnx").report
    assert rec.details["weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert accuracy(Path(rec.model.path), test_data) >= 0.85


def test_gradient_importance_without_labels_uses_the_base_outputs(
    zoo: Manifest, small_train: Dataset, tmp_path: Path
) -> None:
    unlabelled = Dataset(small_train.feeds)
    rec = prune(
        zoo.path("mlp.onnx"),
        PruneConfig(0.3, importance="gradient", samples=64),
        unlabelled,
        tmp_path / "p.onnx",
    ).report
    assert rec.fidelity is not None and rec.fidelity.accuracy is None
    assert rec.fidelity.top1_agreement >= 0.9


def test_accuracy_budget_stops_the_sweep(zoo: Manifest, test_data: Dataset, tmp_path: Path) -> None:
    config = PruneConfig(0.95, accuracy_budget_pt=1.0, step=0.1)
    rec = prune(zoo.path("mlp.onnx"), config, test_data, tmp_path / "p.onnx").report
    chosen = rec.details["requested_sparsity"]
    assert 0.0 < chosen < 0.95
    assert all(row["drop_pt"] <= 1.0 for row in rec.details["sweep"] if row["sparsity"] <= chosen)
    assert rec.fidelity is not None and rec.fidelity.accuracy_drop_pt is not None
    assert "held out" in rec.evaluation  # the sweep's data is not what the report measures


def test_fine_tuning_keeps_the_zeros_and_recovers(
    zoo: Manifest, small_train: Dataset, test_data: Dataset, tmp_path: Path
) -> None:
    base = zoo.path("mlp.onnx")
    plain = prune(base, PruneConfig(0.85), test_data, tmp_path / "a.onnx")
    tuned = prune(
        base, PruneConfig(0.85, fine_tune=TrainConfig(epochs=2)), small_train, tmp_path / "b.onnx"
    )
    assert tuned.report.details["weight_sparsity"] == pytest.approx(0.85, abs=1e-3)
    assert tuned.report.details["fine_tune"]["epochs"] == 2
    assert accuracy(tuned.path, test_data) >= accuracy(plain.path, test_data)


def test_model_without_weights(tmp_path: Path) -> None:
    model = tiny.add_model(tmp_path / "add.onnx")
    with pytest.raises(NothingToPrune, match="no Conv/Gemm/MatMul"):
        prune(model, PruneConfig(0.5), None, tmp_path / "p.onnx")


def test_data_driven_importance_needs_data(zoo: Manifest, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs data"):
        prune(
            zoo.path("mlp.onnx"), PruneConfig(0.5, importance="gradient"), None, tmp_path / "p.onnx"
        )


def test_a_model_stored_with_float16_weights_is_pruned_and_tuned_in_float16(
    zoo: Manifest, small_train: Dataset, tmp_path: Path
) -> None:
    pytest.importorskip("onnxconverter_common")
    half = tmp_path / "half.onnx"
    quantize(zoo.path("mlp.onnx"), QuantizeConfig("fp16"), None, half)
    config = PruneConfig(0.5, fine_tune=TrainConfig(epochs=1))
    pruned = prune(half, config, small_train, tmp_path / "p.onnx")  # trained in float32
    weights = onnx.load(str(pruned.path)).graph.initializer
    assert {t.data_type for t in weights} == {onnx.TensorProto.FLOAT16}  # written back so
    assert pruned.report.details["weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert pruned.report.model.size_bytes <= pruned.report.base.size_bytes
