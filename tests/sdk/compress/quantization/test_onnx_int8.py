"""INT8 calibration runs at the model's own batch (issue 24): a batch-1 export is fed one
sample per call, not the 32 a dynamic batch gets; a model stored with float16 weights is
quantized from them."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeship.compress import CompressOptions, Dataset, GuardPolicy, QuantizeConfig, compress
from edgeship.compress.quantization import onnx_int8
from tests import models


def _rows(n: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(5).standard_normal((n, 64)).astype(np.float32)}


def test_calibration_batch_is_the_models_own(tmp_path: Path) -> None:
    data = Dataset(_rows(8))
    for batch, expected in ((1, (1, True)), ("batch", (onnx_int8.CALIBRATION_BATCH, False))):
        path = models.two_output_model(tmp_path / f"{batch}.onnx", features=64, batch=batch)
        assert onnx_int8.calibration_batch(onnx.load(str(path)), data) == expected


def test_int8_static_of_a_batch_1_model(tmp_path: Path) -> None:
    base = models.two_output_model(tmp_path / "b1.onnx", features=64, batch=1)
    config = QuantizeConfig("int8-static", fallback=False)
    keep = CompressOptions(guard=GuardPolicy(allow_degraded=True))  # the tiny mask may not hold
    report = compress(base, config, _rows(48), tmp_path / "b1.int8.onnx", keep).report
    assert report.details["quantized_nodes"] == ["head_a", "head_b"]
    assert report.interface == [] and report.fidelity is not None
    assert report.fidelity.samples == 10  # the held-out rows, one call each


def _mlp(path: Path) -> Path:
    """``x [batch, 64]`` → MatMul 64×256 → Relu → MatMul 256×10: weights enough that INT8
    is smaller than float16 beside its quantization parameters."""
    rng = np.random.default_rng(6)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [models.scaled_weight(rng, "w1", 64, 256), models.scaled_weight(rng, "w2", 256, 10)],
    )
    return models.save_graph(graph, path)


@pytest.mark.parametrize("method", ["int8-dynamic", "int8-static"])
def test_int8_of_a_model_stored_with_float16_weights(tmp_path: Path, method: str) -> None:
    pytest.importorskip("onnxconverter_common")
    half = tmp_path / "half.onnx"
    compress(_mlp(tmp_path / "mlp.onnx"), QuantizeConfig("fp16"), None, half)
    kinds = {t.data_type for t in onnx.load(str(half)).graph.initializer}
    assert kinds == {TensorProto.FLOAT16}  # as such files ship: float16 weights, float32 I/O
    report = compress(half, QuantizeConfig(method), _rows(48), tmp_path / "q.onnx").report
    assert {"fc1", "fc2"} <= set(report.details["quantized_nodes"])
    assert "2 float16 weight(s) widened to float32 for INT8" in " ".join(report.notes)
    assert report.model.size_bytes < 0.75 * report.base.size_bytes
    assert report.interface == []


def test_two_threads_in_their_pre_processing_folders_leave_the_working_directory(
    tmp_path: Path,
) -> None:
    """A sweep quantizes two variants at once; the working directory is the process's:
    the second waits for the first, and both leave it where it was, whichever asks to
    leave first."""
    before = os.getcwd()
    a_in, a_may_leave, b_may_leave = threading.Event(), threading.Event(), threading.Event()
    seen: list[str] = []

    def pre_process(folder: Path, entered: threading.Event, may_leave: threading.Event) -> None:
        with onnx_int8._inside(folder):
            seen.append(os.getcwd())
            entered.set()
            may_leave.wait(5)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = threading.Thread(target=pre_process, args=(tmp_path / "a", a_in, a_may_leave))
    b = threading.Thread(target=pre_process, args=(tmp_path / "b", threading.Event(), b_may_leave))
    a.start()
    a_in.wait(5)
    b.start()
    time.sleep(0.1)  # b asks to enter while a is inside
    a_may_leave.set()
    a.join(5)
    b_may_leave.set()  # b leaves after a
    b.join(5)
    assert seen == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert os.getcwd() == before


def test_overlapping_quantizations_leave_the_loggers_as_they_were() -> None:
    """The quantizer's advice is muted while any quantization runs, on any thread, and the
    root logger's level is the user's again once the last one ends, whichever ends first."""
    before = logging.root.level
    inner_in, inner_may_leave = threading.Event(), threading.Event()

    def quantize() -> None:
        with onnx_int8._QUIET_ORT.held():
            inner_in.set()
            inner_may_leave.wait(5)

    with onnx_int8._QUIET_ORT.held():
        other = threading.Thread(target=quantize)
        other.start()
        inner_in.wait(5)
    assert logging.root.level == logging.ERROR  # the other thread's is still running
    inner_may_leave.set()
    other.join(5)
    assert logging.root.level == before
