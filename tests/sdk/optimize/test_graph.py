"""``optimize``: simplifier, ONNX Runtime offline levels, opset conversion, verification."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from edgeship.core.errors import ConversionError, VerificationError
from edgeship.optimize import OptimizeConfig, OptimizeReport, optimize
from edgeship.optimize import _graph as graph_module
from edgeship.targets import LocalTarget
from edgeship_runtime.errors import UsageError
from tests.sdk.convert import graphs


@pytest.fixture
def foldable(tmp_path: Path) -> Path:
    return graphs.foldable_model(tmp_path / "foldable.onnx")


def test_simplifier_folds_constants_and_drops_dead_nodes(
    foldable: Path, local: LocalTarget, tmp_path: Path
) -> None:
    out = tmp_path / "opt.onnx"
    report = optimize(foldable, out, local, OptimizeConfig(level="none"))
    assert [s.name for s in report.steps] == ["source", "simplify"]
    assert report.steps[0].nodes == 5 and report.steps[1].nodes == 2
    assert report.ops_after == {"MatMul": 1, "Relu": 1}
    assert report.verification.passed and report.written
    assert OptimizeReport.from_json(report.to_json()) == report


def test_onnxruntime_level_on_local(foldable: Path, local: LocalTarget, tmp_path: Path) -> None:
    report = optimize(foldable, tmp_path / "o.onnx", local, OptimizeConfig(simplify=False))
    assert report.level == "all" and report.level_note == ""
    assert report.steps[-1].name == "onnxruntime"
    # ONNX Runtime folds the constant MatMul/Add but keeps the dead Sigmoid: the
    # simplifier is what removes dead nodes
    assert report.ops_after == {"MatMul": 1, "Relu": 1, "Sigmoid": 1}


def test_opset_conversion(zoo, local: LocalTarget, tmp_path: Path) -> None:
    out = tmp_path / "mlp18.onnx"
    report = optimize(
        zoo.path("mlp.onnx"), out, local, OptimizeConfig(level="basic", simplify=False, opset=18)
    )
    assert report.steps[1].name == "opset"
    assert {o.domain: o.version for o in onnx.load(str(out)).opset_import}[""] == 18
    with pytest.raises(ConversionError, match="cannot convert to opset 7"):
        optimize(
            zoo.path("mlp.onnx"),
            tmp_path / "o7.onnx",
            local,
            OptimizeConfig(level="none", simplify=False, opset=7),
        )


def test_not_equivalent_is_not_written(
    foldable: Path, local: LocalTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def breaks(proto):  # type: ignore[no-untyped-def]
        proto.graph.node[-2].op_type = "Sigmoid"  # relu → sigmoid: same shapes, other values
        return proto

    monkeypatch.setattr(graph_module, "simplify", breaks)
    out = tmp_path / "bad.onnx"
    with pytest.raises(VerificationError, match=r"bad\.onnx is not equivalent"):
        optimize(foldable, out, local, OptimizeConfig(level="none"))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["foldable.onnx"]


def test_refusals(zoo, foldable: Path, local: LocalTarget, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing to do"):
        OptimizeConfig(level="none", simplify=False)
    with pytest.raises(UsageError, match="unknown level 'max'"):
        OptimizeConfig(level="max")
    if "tflite" in zoo.models["mlp"].files:
        with pytest.raises(UsageError, match="works on ONNX models"):
            optimize(zoo.path("mlp.tflite"), tmp_path / "o.onnx", local)


@pytest.mark.slow
def test_cli_optimize_measures(
    cli: Callable[..., int], zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cnn.onnx"
    assert (
        cli(
            "optimize",
            zoo.path("cnn.onnx"),
            out,
            "--measure",
            "--runs",
            "5",
            "--rounds",
            "1",
            "--samples",
            "8",
            "--json",
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["written"] and data["level"] == "all"
    assert [m["model"] for m in data["measurements"]] == ["source", "optimized"]
    assert cli("optimize", zoo.path("cnn.onnx"), out, "--level", "none", "--no-simplify") == 2
    assert capsys.readouterr().err.startswith("error: nothing to do")
