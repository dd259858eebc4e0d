"""Model files: format detection, hashing, and a clear ModelError for every bad file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.errors import ModelError
from edgeship_runtime.model import describe_file, detect_format, load_model
from tests import external_data, models


def test_describe_onnx(add_onnx: Path) -> None:
    info = describe_file(str(add_onnx))
    assert info.format == "onnx"
    assert info.size_bytes == add_onnx.stat().st_size
    assert info.sha256 == hashlib.sha256(add_onnx.read_bytes()).hexdigest()


def test_tflite_is_detected_by_content(tiny_tflite: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(tiny_tflite.read_bytes())
    assert detect_format(str(renamed)) == "tflite"


def test_load_records_load_time_and_memory(add_onnx: Path) -> None:
    model = load_model(str(add_onnx))
    assert model.load_ms > 0
    assert model.rss_before_load_mb > 0 and model.rss_after_load_mb > 0
    assert model.load_peak_mb >= model.rss_after_load_mb * 0.99
    assert model.first_inference_ms is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        load_model(str(tmp_path / "absent.onnx"))


def test_empty_file(empty_onnx: Path) -> None:
    with pytest.raises(ModelError, match="the model file is empty"):
        load_model(str(empty_onnx))


def test_text_named_onnx(text_onnx: Path) -> None:
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        load_model(str(text_onnx))


def test_truncated_onnx(truncated_onnx: Path) -> None:
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        load_model(str(truncated_onnx))


def test_text_named_tflite(tmp_path: Path) -> None:
    path = models.text_file(tmp_path / "notes.tflite")
    with pytest.raises(ModelError, match="not a TFLite model"):
        load_model(str(path))


def test_truncated_tflite(tiny_tflite: Path, tmp_path: Path) -> None:
    path = models.truncated_copy(tiny_tflite, tmp_path / "cut.tflite")
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        load_model(str(path))


def test_unknown_suffix(tmp_path: Path) -> None:
    path = models.text_file(tmp_path / "model.pt")
    with pytest.raises(ModelError, match=r"unknown model format \(known suffixes: .lite, .onnx"):
        load_model(str(path))


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        load_model(str(tmp_path))


def test_onnx_with_external_data_loads_and_runs(tmp_path: Path) -> None:
    path = external_data.external_data_model(tmp_path / "big.onnx")
    info = describe_file(str(path))
    data = tmp_path / "big.onnx.data"
    assert info.format == "onnx" and info.size_bytes == path.stat().st_size + data.stat().st_size
    loaded = load_model(str(path))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (y,) = loaded.run({"x": x})
    np.testing.assert_allclose(y, external_data.expected(x), rtol=1e-6)
    loaded.close()


def test_onnx_with_missing_external_data_is_a_model_error(tmp_path: Path) -> None:
    path = external_data.external_data_model(tmp_path / "big.onnx")
    (tmp_path / "big.onnx.data").unlink()
    with pytest.raises(ModelError, match=r"companion file big\.onnx\.data is missing"):
        load_model(str(path))
