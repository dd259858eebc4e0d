"""What a failed compression leaves and says (issue 24): nothing at ``--out`` and no
temporary file beside it, a library's error as one line naming the model, the method, the
node and what to try, and a result slower than its base on the target refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress import (
    CompressOptions,
    GuardPolicy,
    Latency,
    PruneConfig,
    QuantizeConfig,
    Slower,
    compress,
)
from edgeship.compress import _evaluate as evaluate
from edgeship.compress.methods import Job, Method, Outcome
from edgeship.core.errors import CompressionError
from tests import models

KEEP = GuardPolicy(allow_degraded=True)


def _one_sample_only(path: Path) -> Path:
    """``x [batch, 6]`` → MatMul → Reshape to a fixed ``[2, 3]``: declared for any batch,
    it runs at batch 1 only, so ONNX Runtime fails inside calibration at batch 32."""
    w = np.random.default_rng(0).standard_normal((6, 6)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
            helper.make_node("Reshape", ["h", "shape"], ["y"], name="reshape"),
        ],
        "one_sample_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "shape"),
        ],
    )
    return models.save_graph(graph, path)


def _rows(n: int, width: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(3).standard_normal((n, width)).astype(np.float32)}


def test_a_library_error_is_one_line_naming_model_method_node_and_what_to_try(
    tmp_path: Path,
) -> None:
    base = _one_sample_only(tmp_path / "one.onnx")
    out = tmp_path / "out" / "one.int8.onnx"
    with pytest.raises(CompressionError) as info:
        compress(base, QuantizeConfig("int8-static"), _rows(40, 6), out)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("one.onnx: int8-static failed in onnxruntime at node 'reshape'")
    assert "(Reshape)" in message
    # kept in float and retried, it failed the same way: no tip to exclude it again
    assert "(with node reshape kept in float too); try fp16" in message
    assert info.value.details["node"] == "reshape"
    assert not out.exists() and list(out.parent.iterdir()) == []  # no debris either


def test_the_cli_prints_the_library_error_as_one_line(tmp_path: Path) -> None:
    base = _one_sample_only(tmp_path / "one.onnx")
    data = tmp_path / "d.npz"
    np.savez(data, **_rows(40, 6))
    out = tmp_path / "q.onnx"
    argv = [str(base), "--method", "int8-static", "--data", str(data), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "edgeship.cli.main", "compress", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: one.onnx: int8-static failed in onnxruntime")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "one.onnx"]


def test_a_refused_result_leaves_nothing_at_out(tmp_path: Path) -> None:
    base = models.two_output_model(tmp_path / "two.onnx")
    out = tmp_path / "out" / "pruned.onnx"
    out.parent.mkdir()
    out.write_bytes(b"an older result")  # replaced only by an accepted one
    with pytest.raises(CompressionError, match="collapsed"):
        compress(base, PruneConfig(0.5), _rows(32, 16), out)
    assert out.read_bytes() == b"an older result"
    assert [p.name for p in out.parent.iterdir()] == ["pruned.onnx"]
    kept = compress(base, PruneConfig(0.5), _rows(32, 16), out, CompressOptions(guard=KEEP))
    assert kept.path == out and kept.report.model.path == str(out)
    assert out.read_bytes() != b"an older result"
    assert [p.name for p in out.parent.iterdir()] == ["pruned.onnx"]


def _slower(monkeypatch: pytest.MonkeyPatch, *factors: float) -> list[int]:
    """Latency measured as ``factors`` times the base's, round after round (the comparison
    is what is tested here; real interleaved timing: tests/sdk/compress/test_guards.py);
    returns the rounds asked for, call after call."""
    asked: list[int] = []

    def measured(base: Path, model: Path, target: object, threads: int, **kw: Any) -> Latency:
        rounds = kw["rounds"]
        start = sum(asked)
        asked.append(rounds)
        model_ms = [factors[(start + i) % len(factors)] for i in range(rounds)]
        return Latency.of_rounds("local", threads, [1.0] * rounds, model_ms, {"x": [1, 64]})

    monkeypatch.setattr(evaluate, "latency", measured)
    return asked


def test_a_result_slower_than_its_base_fails_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = models.two_output_model(tmp_path / "two.onnx", features=64)
    out = tmp_path / "q.onnx"
    config = QuantizeConfig("int8-dynamic", fallback=False)
    asked = _slower(monkeypatch, 3.2)
    with pytest.raises(Slower, match=r"3\.20× slower than its base on local .*in 12 of 12"):
        compress(base, config, None, out, CompressOptions(latency=True))
    assert asked == [3, 9] and not out.exists()  # three rounds cannot tell: twelve can
    kept = compress(base, config, None, out, CompressOptions(latency=True, guard=KEEP)).report
    assert kept.notes[0].startswith("warning: the result is 3.20× slower than its base")
    assert "slower" in kept.degraded and out.exists()
    _slower(monkeypatch, 1.01)  # within the margin: no failure
    assert compress(base, config, None, out, CompressOptions(latency=True)).report.latency


def test_a_slowdown_at_the_median_that_not_enough_rounds_share_is_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 10 µs model's sessions differ by ±20 %: a median 1.09× slower, with the result
    faster in three rounds of twelve, is not refused (a chance of 7 % with equal speeds)."""
    base = models.two_output_model(tmp_path / "two.onnx", features=64)
    config = QuantizeConfig("int8-dynamic", fallback=False)
    asked = _slower(monkeypatch, 1.2, 1.09, 1.15, 0.9)
    report = compress(base, config, None, tmp_path / "q.onnx", CompressOptions(latency=True))
    lat = report.report.latency
    assert asked == [3, 9] and lat is not None and lat.rounds == 12 and lat.rounds_slower == 9
    assert lat.model_p50_ms > 1.05 and not report.report.degraded
    # rounds this noisy resolve only a large slowdown, and the report says which
    assert lat.detectable_slowdown is not None and lat.detectable_slowdown > 0.1


def test_a_node_a_library_fails_on_is_kept_in_float_and_the_method_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quantizer bug on one odd node (ONNX Runtime's on Magika's Div) costs that node,
    not the model: kept in float, the method runs again and says so."""
    real = Method.run

    def fails_at_mm(self: Method, job: Job) -> Outcome:  # type: ignore[type-arg]
        if "mm" not in job.config.exclude_nodes:
            node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")  # noqa: F841
            raise ValueError("The truth value of an array with more than one element")
        return real(self, job)

    monkeypatch.setattr(Method, "run", fails_at_mm)
    base = models.tiny_matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "mm.int8.onnx"
    options = CompressOptions(guard=KEEP, latency_runs=5, latency_rounds=1)
    result = compress(base, QuantizeConfig("int8-static"), _rows(40, 3), out, options)
    (note,) = [n for n in result.report.notes if "kept in float" in n]
    assert note.startswith("node 'mm' (MatMul) kept in float: ")
    assert "failed on it (ValueError: The truth value of an array" in note
    assert "mm" in result.report.details["excluded_nodes"] and out.is_file()


def test_a_bias_of_two_dimensions_is_quantized_without_the_scale_widening(
    tmp_path: Path,
) -> None:
    """ONNX Runtime's per-channel step that widens weight scales for int32 biases fails on a
    Gemm bias shaped [1, N] (Magika's logits): quantized without that step, and said."""
    rng = np.random.default_rng(0)
    bias = numpy_helper.from_array(rng.standard_normal((1, 8)).astype(np.float32), "c")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", transB=1)],
        "gemm_2d_bias",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=[models.scaled_weight(rng, "w", 8, 16), bias],
    )
    base = models.save_graph(graph, tmp_path / "gemm.onnx")
    options = CompressOptions(guard=KEEP, latency_runs=5, latency_rounds=1)
    out = tmp_path / "q.onnx"
    result = compress(base, QuantizeConfig("int8-static"), _rows(64, 16), out, options)
    assert any("quantized without that adjustment" in n for n in result.report.notes)
    assert "fc" in result.report.details["quantized_nodes"]
