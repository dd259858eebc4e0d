"""Preparation of field graphs (:mod:`edgeship.models.prepare`) on a Paddle-style graph
built here: its ``Constant`` weights folded, the graph simplified, and no shape
annotation added that the base did not carry (they made a pruned PaddleOCR detector
1.02× its base's size)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgeship.models.onnx_graph import graphs
from edgeship.models.prepare import _keep_annotations, prepared
from tests.models import field_cnn_model


def _annotated(path: Path) -> set[str]:
    return {v.name for g in graphs(onnx.load(str(path)).graph) for v in g.value_info}


def test_a_simplified_graph_carries_only_the_bases_shape_annotations(tmp_path: Path) -> None:
    pytest.importorskip("onnxslim")
    base = field_cnn_model(tmp_path / "field.onnx")
    model = onnx.load(str(base))
    model.graph.value_info.extend([onnx.helper.make_tensor_value_info("r1", 1, None)])
    onnx.save(model, str(base))
    with prepared(base) as ready:
        assert "simplified with onnxslim" in ready.note
        assert _annotated(ready.path) == {"r1"}  # the base's one, none of onnxslim's
        assert ready.path.stat().st_size < base.stat().st_size


def test_an_annotation_the_simplifier_repeats_is_kept_once(tmp_path: Path) -> None:
    """onnxslim 0.1.98 wrote each of YOLOv8n's 332 annotations up to 9 times (1432
    entries): a pruned copy came out 1.02× its base's size."""
    base = onnx.load(str(field_cnn_model(tmp_path / "field.onnx")))
    base.graph.value_info.extend([onnx.helper.make_tensor_value_info("r1", 1, None)])
    slim = onnx.ModelProto()
    slim.CopyFrom(base)
    slim.graph.value_info.extend(
        [onnx.helper.make_tensor_value_info(n, 1, None) for n in ("r1", "r1", "new")]
    )
    _keep_annotations(base, slim)
    assert [v.name for v in slim.graph.value_info] == ["r1"]
