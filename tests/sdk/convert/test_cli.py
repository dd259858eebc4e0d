"""``edgeship convert``: results, reports, and one ``error:`` line for each bad input."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sdk.convert import graphs

pytestmark = pytest.mark.slow


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def test_convert_prints_the_verification(
    cli: Callable[..., int], zoo, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mlp.onnx"
    assert (
        cli(
            "convert",
            "tools.zoo.models:mlp",
            out,
            "--weights",
            zoo.path("mlp.pt"),
            "--data",
            digits,
            "--output-names",
            "logits",
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "pytorch->onnx" in text and "equivalent" in text and "logits" in text
    assert "same input/output layout as the source" in text
    assert (
        cli(
            "convert",
            "tools.zoo.models:mlp",
            tmp_path / "j.onnx",
            "--weights",
            zoo.path("mlp.pt"),
            "--shape",
            "input=2,1,8,8",
            "--json",
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["verification"]["passed"] and data["verification"]["data"] == "generated (seed 0)"


def test_not_equivalent_exits_1_with_report(
    cli: Callable[..., int], zoo, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mlp.onnx"
    # an impossible tolerance: any float difference at all fails
    code = cli(
        "convert",
        "tools.zoo.models:mlp",
        out,
        "--weights",
        zoo.path("mlp.pt"),
        "--data",
        digits,
        "--atol",
        "0",
        "--rtol",
        "0",
        "--min-cosine",
        "1",
        "--json",
    )
    captured = capsys.readouterr()
    if code == 0:
        pytest.skip("torch and ONNX Runtime agreed bit for bit on this machine")
    assert code == 1 and not out.exists()
    report = json.loads(captured.out)
    assert report["written"] is False and report["error"]["type"] == "VerificationError"
    assert "is not equivalent" in _one_error_line(captured.err)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["tools.zoo.models:mlp", "out.caffemodel"], 2, "unknown output format '.caffemodel'"),
        (
            ["no_such_pkg.nets:mlp", "out.onnx", "--shape", "input=1,1,8,8"],
            1,
            "cannot import the factory 'no_such_pkg.nets:mlp'",
        ),
        (["tools.zoo.models:mlp", "out.onnx"], 2, "needs example inputs"),
        (["weights.pt", "out.onnx"], 2, "needs --factory"),
        (["missing.onnx", "out.tflite"], 1, "missing.onnx: no such model file"),
        (["tools.zoo.models:mlp", "out.onnx", "--shape", "input=1,x"], 2, "bad --shape"),
    ],
)
def test_bad_input_is_one_error_line(
    cli: Callable[..., int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("convert", *argv) == code
    assert message in _one_error_line(capsys.readouterr().err)


def test_unsupported_op_is_named(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch not installed")
    model = graphs.hardmax_model(tmp_path / "hardmax.onnx")
    assert cli("convert", model, tmp_path / "h.tflite") == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot convert op(s): Hardmax (opset 17)" in line


def test_an_interface_change_is_a_line_of_its_own(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch not installed")
    model = graphs.int64_ids_model(tmp_path / "ids.onnx")
    assert cli("convert", model, tmp_path / "ids.tflite", "--shape", "ids=1,4") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "interface: input 'ids' changed: int64 batch×4 → int32 1×4" in lines
