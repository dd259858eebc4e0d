"""Tests for the real-model benchmark's own runner (tools/bench/_run.py) on a small ONNX
graph built here, and for the benchmark's summary words (tools/bench/real_models.py)."""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) omits the cwd
    sys.path.insert(0, str(REPO_ROOT))

from tools.bench._run import Session, latency_ratio, rows  # noqa: E402

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def stateful_graph(path: Path) -> Path:
    """``y = x + state`` and ``state_out = state * 2``: a per-sample input beside a
    per-call one, batch dynamic."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    state = helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    out = helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [1, 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [
        helper.make_node("Add", ["x", "state"], ["y"]),
        helper.make_node("Mul", ["state", "two"], ["state_out"]),
    ]
    graph = helper.make_graph(nodes, "g", [x, state], [y, out], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_rows_slice_samples_and_keep_per_call_inputs(tmp_path: Path) -> None:
    data = tmp_path / "d.npz"
    np.savez(
        data, x=np.arange(40, dtype=np.float32).reshape(10, 4), state=np.ones((1, 4), np.float32)
    )
    feeds = rows(data, ["x", "state"], 3)
    assert [f["x"][0, 0] for f in feeds] == [28, 32, 36]
    assert all(f["state"].shape == (1, 4) for f in feeds)


def test_session_runs_and_describes_its_interface(tmp_path: Path) -> None:
    session = Session(stateful_graph(tmp_path / "m.onnx"))
    assert session.inputs == [("x", "float32", (None, 4)), ("state", "float32", (1, 4))]
    out = session.run({"x": np.ones((1, 4), np.float32), "state": np.ones((1, 4), np.float32)})
    assert out["y"].tolist() == [[2, 2, 2, 2]] and out["state_out"].tolist() == [[2, 2, 2, 2]]
    by_position = session.run({"a": np.zeros((1, 4), np.float32), "b": np.ones((1, 4), np.float32)})
    assert by_position["y"].tolist() == [[1, 1, 1, 1]]
    ratio = latency_ratio(
        session,
        session,
        {"x": np.ones((1, 4), np.float32), "state": np.ones((1, 4), np.float32)},
        0.05,
    )
    assert 0 < ratio < 10


def test_speed_words_and_summary_counts() -> None:
    from tools.bench.real_models import Case, _speed, summary

    assert _speed(0.5) == "2.00× faster" and _speed(3.2) == "3.20× slower"
    cases = [
        Case("a", "fp16", "usable", "", 1.0, latency_ratio=0.5, size_ratio=0.5),
        Case("a", "int8-dynamic", "usable", "", 1.0, latency_ratio=2.0, size_ratio=0.3),
        Case("b", "int8-static", "wrong", "output0[scores]: constant", 1.0),
        Case("b", "prune", "refused", "FidelityCollapse: ... [debris: b.onnx left at --out]", 1.0),
        Case("c", "prune", "n/a", "NothingToPrune: ...", 1.0),
    ]
    text = summary(cases)
    assert "4 applicable cases: 2 usable (50%)" in text
    assert "1 wrong (1 silently" in text and "1 usable but slower" in text
    assert "1 refusals left debris" in text and "over 1 models: 2.00×" in text
    # how many collapse refusals the judge looked at again: none here, and it says so
    assert "0 refused as collapsed that the judge finds usable (of the 0 of 1 such" in text


def test_nothing_to_convert_is_not_applicable_and_a_collapse_is_refused() -> None:
    from edgeship.compress import NothingToConvert
    from edgeship.compress.guard import FidelityCollapse
    from tools.bench.real_models import _judge_error

    status, line = _judge_error(NothingToConvert("fp16: nothing to convert, float16 already"))
    assert status == "n/a" and line.startswith("NothingToConvert: fp16: nothing to convert")
    assert _judge_error(FidelityCollapse("int8-static collapsed the model", []))[0] == "refused"


def test_a_tflite_signature_lists_its_ports_in_the_models_order(tmp_path: Path) -> None:
    """A signature is a map listed by name (``state`` before ``x``); compared position by
    position with the source, that order would pair different tensors."""
    missing = [m for m in ("onnx2torch", "litert_torch", "ai_edge_litert") if not find_spec(m)]
    if missing:  # not imported here: onnx2torch with a torchvision built for another torch
        pytest.skip(f"needs {', '.join(missing)}")  # raises, and convert stands in for it
    from edgeship.convert import ConvertConfig, convert

    out = tmp_path / "m.tflite"
    convert(ConvertConfig(str(stateful_graph(tmp_path / "m.onnx")), out))
    session = Session(out)
    assert [p[0] for p in session.inputs] == ["x", "state"]
    assert [p[0] for p in session.outputs] == ["y", "state_out"]
