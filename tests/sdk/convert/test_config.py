"""Formats by suffix or flag, and the conversions a config refuses up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.convert._config import ConvertConfig, format_of, is_factory_spec
from edgeship_runtime.errors import UsageError


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("m.onnx", "onnx"),
        ("M.TFLITE", "tflite"),
        ("w.pt", "pytorch"),
        ("w.pth", "pytorch"),
        ("w.ckpt", "pytorch"),
        ("tools.zoo.models:cnn", "pytorch"),
        ("nets/a.py:build", "pytorch"),
    ],
)
def test_format_by_suffix(name: str, fmt: str) -> None:
    assert format_of(name, None, "input") == fmt


def test_flag_overrides_suffix_and_unknown_suffix_is_named() -> None:
    assert format_of("model.bin", "onnx", "input") == "onnx"
    with pytest.raises(UsageError, match=r"model\.bin: unknown output format '\.bin'"):
        format_of("model.bin", None, "output")
    with pytest.raises(UsageError, match="no suffix"):
        format_of("model", None, "input")
    with pytest.raises(UsageError, match="unknown input format 'caffe'"):
        format_of("m.onnx", "caffe", "input")


def test_factory_spec_is_not_an_existing_file(tmp_path: Path) -> None:
    assert is_factory_spec("pkg.mod:make")
    assert not is_factory_spec("pkg.mod:")
    assert not is_factory_spec("model.onnx")
    odd = tmp_path / "a:b"
    odd.write_text("")
    assert not is_factory_spec(str(odd))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "a.onnx", "output": "b.onnx"}, "already onnx: nothing to convert"),
        ({"source": "a.onnx", "output": "b.pt"}, "converting to PyTorch is not supported"),
        ({"source": "w.pt", "output": "b.onnx"}, "needs --factory"),
        ({"source": "a.onnx", "output": "b.tflite", "factory": "m:f"}, "PyTorch sources only"),
        ({"source": "m:f", "output": "b.onnx", "opset": 3}, "--opset must lie in 7..30"),
        ({"source": "m:f", "output": "b.tflite", "batch": 0}, "--batch must be at least 1"),
    ],
)
def test_config_refuses(kwargs: dict[str, object], message: str) -> None:
    kwargs["output"] = Path(str(kwargs["output"]))
    with pytest.raises(UsageError, match=message):
        ConvertConfig(**kwargs)  # type: ignore[arg-type]


def test_checkpoint_with_factory() -> None:
    config = ConvertConfig(source="w.pt", output=Path("o.onnx"), factory="m:f")
    assert config.formats() == ("pytorch", "onnx")
    assert config.factory_and_weights() == ("m:f", Path("w.pt"))
    spec = ConvertConfig(source="m:f", output=Path("o.tflite"), weights=Path("w.pt"))
    assert spec.factory_and_weights() == ("m:f", Path("w.pt"))
