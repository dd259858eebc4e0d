"""FP16 keeps in float32 what onnxconverter-common cannot convert, instead of failing:
an audio front-end (STFT as convolutions, mel filterbank, log, a final ``Max``); a model
whose weights are float16 already is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.compress import FidelityCollapse, NothingToConvert, QuantizeConfig, compress
from edgeship.compress.quantization import onnx_fp16
from tests import models
from tests.models import N_FFT
from tests.sdk.compress.conftest import HAS_FP16

pytestmark = pytest.mark.skipif(not HAS_FP16, reason="onnxconverter-common not installed")


def _audio(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    return {"audio": rng.standard_normal((n, models.SAMPLES)).astype(np.float32)}


def test_fp16_of_an_audio_front_end_holds(tmp_path: Path) -> None:
    base = models.log_mel_model(tmp_path / "mel.onnx")
    out = tmp_path / "mel.fp16.onnx"
    report = compress(base, QuantizeConfig("fp16"), _audio(8), out).report
    [mel] = report.outputs
    assert not mel.collapsed and report.model.size_bytes < report.base.size_bytes
    assert report.interface == []  # float32 audio in, float32 mel out


def test_a_node_the_converter_fails_on_is_kept_in_float32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any node the converter raises on (a frame holding it), retried with it kept."""
    float16 = pytest.importorskip("onnxconverter_common.float16")
    convert = float16.convert_float_to_float16
    model = onnx.load(str(models.small_head_model(tmp_path / "head.onnx")))

    def fails_on_relu(copy: onnx.ModelProto, **kw: object) -> onnx.ModelProto:
        for node in copy.graph.node:  # the local the error's cause is read from
            if node.op_type == "Relu" and node.name not in kw["node_block_list"]:  # type: ignore[operator]
                raise ValueError("cannot convert this node")
        return convert(copy, **kw)

    monkeypatch.setattr(float16, "convert_float_to_float16", fails_on_relu)
    kept = onnx_fp16.convert_fp16(model, QuantizeConfig("fp16"), tmp_path / "half.onnx")
    assert kept.kept == ["relu"]


def test_fp16_of_float16_weights_has_nothing_to_convert(tmp_path: Path) -> None:
    half = tmp_path / "mel.fp16.onnx"
    compress(models.log_mel_model(tmp_path / "mel.onnx"), QuantizeConfig("fp16"), None, half)
    again = tmp_path / "again.onnx"
    with pytest.raises(NothingToConvert, match="float16 already") as err:
        compress(half, QuantizeConfig("fp16"), None, again)
    assert "\n" not in str(err.value) and not again.exists()


def test_nodes_whose_activations_leave_float16s_range_compute_in_float32_stored_half(
    tmp_path: Path,
) -> None:
    """Audio at 16-bit scale: the STFT's power spectrum reaches 1e12, inf in float16. Found
    on the search inputs, those nodes (and the log reading them) compute in float32 with
    their weights stored float16, so the file is still about half the size."""
    base = models.log_mel_model(tmp_path / "mel.onnx")
    loud = {"audio": _audio(24)["audio"] * 32768.0}
    with pytest.raises(FidelityCollapse):  # without the search: inf
        compress(base, QuantizeConfig("fp16", fallback=False), loud, tmp_path / "f.onnx")
    report = compress(base, QuantizeConfig("fp16"), loud, tmp_path / "mel.fp16.onnx").report
    [mel] = report.outputs
    assert not mel.collapsed
    stored = report.details["float16_stored_nodes"]
    convs = [n for n in stored if n.startswith("/Conv")]
    assert len(convs) == 2 and set(stored) <= set(report.details["float_nodes"])
    assert any(f"{len(stored)} of the" in n and "weights stored float16" in n for n in report.notes)
    assert report.model.size_bytes < 0.6 * report.base.size_bytes
    model = onnx.load(str(tmp_path / "mel.fp16.onnx"))
    halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert any(t.name.endswith("_fp16") and np.prod(t.dims) >= N_FFT for t in halves)
