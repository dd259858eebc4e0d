"""FP16 keeps in float32 what onnxconverter-common cannot convert, instead of failing:
an audio front-end (STFT as convolutions, mel filterbank, log, a final ``Max``); a model
whose weights are float16 already is refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.compress import NothingToConvert, QuantizeConfig, compress
from edgeship.compress.quantization import onnx_fp16
from tests import models
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
    assert kept == ["relu"]


def test_fp16_of_float16_weights_has_nothing_to_convert(tmp_path: Path) -> None:
    half = tmp_path / "mel.fp16.onnx"
    compress(models.log_mel_model(tmp_path / "mel.onnx"), QuantizeConfig("fp16"), None, half)
    again = tmp_path / "again.onnx"
    with pytest.raises(NothingToConvert, match="float16 already") as err:
        compress(half, QuantizeConfig("fp16"), None, again)
    assert "\n" not in str(err.value) and not again.exists()
