"""Every conversion route on the real zoo models, verified through the local runtime."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.convert import (
    ConversionReport,
    ConvertConfig,
    UnsupportedOpError,
    VerificationError,
    VerifyData,
    convert,
    convert_module,
)
from edgeship.convert import _onnx_tflite as onnx_tflite
from edgeship.convert import _torch_onnx as torch_onnx
from edgeship.core.extras import MissingExtra
from edgeship.targets import LocalTarget
from tests.sdk.convert import graphs
from tools.zoo import models

pytestmark = pytest.mark.slow
HAS_LITERT_TORCH = importlib.util.find_spec("litert_torch") is not None
HAS_ONNX2TORCH = importlib.util.find_spec("onnx2torch") is not None
HAS_TF2ONNX = importlib.util.find_spec("tf2onnx") is not None
needs_litert = pytest.mark.skipif(not HAS_LITERT_TORCH, reason="litert-torch not installed")
needs_onnx2torch = pytest.mark.skipif(not HAS_ONNX2TORCH, reason="onnx2torch not installed")


def _data(digits: Path, samples: int = 0) -> VerifyData:
    return VerifyData(data=digits, samples=samples)


def test_pytorch_to_onnx_named_dynamic_batch(
    zoo, digits: Path, local: LocalTarget, tmp_path: Path
) -> None:
    out = tmp_path / "cnn.onnx"
    config = ConvertConfig(
        source="tools.zoo.models:cnn",
        output=out,
        weights=zoo.path("cnn.pt"),
        output_names=("logits",),
        verify=_data(digits),
    )
    report = convert(config, local).report
    assert report.passed and report.written and out.is_file()
    assert report.route == "pytorch->onnx" and not report.layout_changed
    assert report.verification.samples == 360
    assert report.verification.outputs[0].top1_agreement == 1.0
    assert report.verification.outputs[0].max_abs_diff < 1e-4
    graph = onnx.load(str(out)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert ConversionReport.from_json(report.to_json()) == report


def test_python_api_takes_a_live_module(local: LocalTarget, tmp_path: Path) -> None:
    module = models.mlp()
    example = [np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)]
    report = convert_module(module, example, tmp_path / "mlp.onnx", target=local).report
    assert report.passed and report.source.path == "<Sequential>"
    assert [i.name for i in onnx.load(str(tmp_path / "mlp.onnx")).graph.input] == ["input"]


def test_not_equivalent_fails_and_writes_nothing_unless_forced(
    zoo, digits: Path, local: LocalTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong_export(source, out, opset):  # type: ignore[no-untyped-def]
        shutil.copy(zoo.path("mlp.onnx"), out)  # another model: same interface, other weights
        return torch_onnx.Converted("wrong exporter")

    monkeypatch.setattr(torch_onnx, "convert", wrong_export)
    out = tmp_path / "cnn.onnx"
    config = ConvertConfig(
        source="tools.zoo.models:cnn",
        output=out,
        weights=zoo.path("cnn.pt"),
        verify=_data(digits, 64),
    )
    with pytest.raises(VerificationError, match=r"cnn\.onnx is not equivalent") as info:
        convert(config, local)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert not info.value.report.passed and not info.value.report.written
    forced = convert(ConvertConfig(**{**config.__dict__, "force": True}), local).report
    assert out.is_file() and forced.forced and forced.written and not forced.passed


@needs_litert
def test_pytorch_to_tflite_keeps_nchw(zoo, digits: Path, local: LocalTarget, tmp_path: Path):
    out = tmp_path / "cnn.tflite"
    config = ConvertConfig(
        source="tools.zoo.models:cnn",
        output=out,
        weights=zoo.path("cnn.pt"),
        verify=_data(digits, 100),
    )
    report = convert(config, local).report
    assert report.passed and out.is_file()
    assert report.layout_statement() == "same input/output layout as the source"
    assert any("fixed batch of 1" in n for n in report.notes)
    assert report.verification.samples == 100  # fed row by row to the batch-1 model


@needs_litert
@needs_onnx2torch
def test_onnx_to_tflite(zoo, digits: Path, local: LocalTarget, tmp_path: Path) -> None:
    result = convert(
        ConvertConfig(
            source=str(zoo.path("mlp.onnx")),
            output=tmp_path / "m.tflite",
            verify=_data(digits, 100),
        ),
        local,
    )
    report = result.report
    assert result.path == tmp_path / "m.tflite" and result.path.is_file()
    assert report.passed and report.converter.startswith("onnx2torch")
    assert report.verification.outputs[0].name == "logits"


@needs_onnx2torch
def test_onnx_to_tflite_names_unsupported_ops(local: LocalTarget, tmp_path: Path) -> None:
    model = graphs.hardmax_model(tmp_path / "hardmax.onnx")
    with pytest.raises(UnsupportedOpError, match=r"cannot convert op\(s\): Hardmax") as info:
        convert(ConvertConfig(source=str(model), output=tmp_path / "h.tflite"), local)
    assert info.value.ops == ["Hardmax (opset 17)"]
    assert not (tmp_path / "h.tflite").exists()


@needs_onnx2torch
def test_missing_torchvision_makes_its_ops_unsupported() -> None:
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["b", "s"], ["i"])],
        "nms",
        [
            helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1, 4, 4]),
            helper.make_tensor_value_info("s", onnx.TensorProto.FLOAT, [1, 1, 4]),
        ],
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, [None, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_tflite.import_onnx2torch()
    assert onnx_tflite.unsupported_ops(model, missing_vision=True) == [
        "NonMaxSuppression (needs torchvision)"
    ]
    assert onnx_tflite.unsupported_ops(model, missing_vision=False) == []


@pytest.mark.skipif(HAS_TF2ONNX, reason="tf2onnx is installed here")
def test_tflite_to_onnx_says_it_needs_tensorflow(zoo, local: LocalTarget, tmp_path: Path):
    if "tflite" not in zoo.models["mlp"].files:
        pytest.skip("the zoo has no .tflite (litert-torch missing)")
    with pytest.raises(MissingExtra, match=r"needs tf2onnx: pip install 'edgeship\[tflite-onnx\]'"):
        convert(
            ConvertConfig(source=str(zoo.path("mlp.tflite")), output=tmp_path / "m.onnx"), local
        )


@pytest.mark.skipif(not HAS_TF2ONNX, reason="tf2onnx (the tflite-onnx extra) not installed")
def test_tflite_to_onnx(zoo, digits: Path, local: LocalTarget, tmp_path: Path) -> None:
    out = tmp_path / "cnn.onnx"
    report = convert(
        ConvertConfig(source=str(zoo.path("cnn.tflite")), output=out, verify=_data(digits, 100)),
        local,
    ).report
    assert report.passed
    assert [i.name for i in onnx.load(str(out)).graph.input] == ["input"]
