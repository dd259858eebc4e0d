"""A model file is read once per version: format, size, digest and graph."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeship.compress import CompressOptions, GuardPolicy, QuantizeConfig, compress
from edgeship.core.errors import ModelError
from edgeship.core.hashing import file_sha256
from edgeship.models import model_file, onnx_graph
from edgeship.models.model_file import ModelFile
from tests.models import add_model, text_file, tiny_matmul_model


def test_the_same_version_is_the_same_value(tmp_path: Path) -> None:
    path = add_model(tmp_path / "m.onnx")
    first = ModelFile.of(path)
    assert ModelFile.of(str(path)) is first
    assert (first.format, first.size_bytes) == ("onnx", path.stat().st_size)
    assert first.sha256 == file_sha256(path)


def test_a_file_written_again_is_read_again(tmp_path: Path) -> None:
    path = add_model(tmp_path / "m.onnx")
    first = ModelFile.of(path)
    digest = first.sha256
    tiny_matmul_model(tmp_path / "other.onnx")
    os.replace(tmp_path / "other.onnx", path)
    again = ModelFile.of(path)
    assert again is not first
    assert (again.sha256, again.size_bytes) == (file_sha256(path), path.stat().st_size)
    assert again.sha256 != digest


def test_missing_and_unknown_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        ModelFile.of(tmp_path / "absent.onnx")
    with pytest.raises(ModelError, match="unknown model format"):
        ModelFile.of(text_file(tmp_path / "notes.txt"))


def test_the_graph_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = add_model(tmp_path / "m.onnx")
    loads: list[Path] = []
    real = onnx_graph.load
    monkeypatch.setattr(onnx_graph, "load", lambda p: loads.append(Path(p)) or real(p))
    model = ModelFile.of(path)
    assert model.graph is ModelFile.of(path).graph
    assert loads == [path]


def test_a_compression_detects_its_base_format_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Along compress's whole path (registry, data checks, guard, stats, report) the base
    file's format is detected once, not once per step that asks."""
    base = tiny_matmul_model(tmp_path / "base.onnx")
    seen: list[str] = []
    real = model_file.detect_format
    monkeypatch.setattr(model_file, "detect_format", lambda p: seen.append(p) or real(p))
    out = tmp_path / "int8.onnx"
    options = CompressOptions(guard=GuardPolicy(allow_degraded=True))
    compress(base, QuantizeConfig("int8-dynamic"), None, out, options)
    assert seen.count(str(base)) == 1, seen
