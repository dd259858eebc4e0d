"""What staging sends for a model, and the remote paths it may use (no device needed)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from edgeship.deploy.files import model_files
from edgeship.deploy.layout import Layout
from edgeship.core.errors import ModelError, UsageError
from tests.external_data import external_data_model


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_single_file_model_is_its_own_sha256(add_onnx: Path) -> None:
    files = model_files(add_onnx)
    assert not files.multi_file and files.companions == ()
    assert files.digest == files.sha256 == _sha(add_onnx)
    assert (files.format, files.suffix, files.total_bytes) == (
        "onnx",
        ".onnx",
        add_onnx.stat().st_size,
    )


def test_a_model_with_external_data_is_a_listing(tmp_path: Path) -> None:
    model = external_data_model(tmp_path / "ext.onnx", {"W": "weights/w.bin", "b": "b.bin"})
    files = model_files(model)
    assert files.multi_file and files.main_name == "model.onnx"
    assert [f.name for f in files.files()] == ["model.onnx", "b.bin", "weights/w.bin"]
    assert files.listing() == {
        "b.bin": _sha(tmp_path / "b.bin"),
        "model.onnx": _sha(model),
        "weights/w.bin": _sha(tmp_path / "weights" / "w.bin"),
    }
    # the digest is that of what `sha256sum` prints for the staged directory, sorted
    staged = tmp_path / "staged"
    (staged / "weights").mkdir(parents=True)
    (staged / "model.onnx").write_bytes(model.read_bytes())
    (staged / "b.bin").write_bytes((tmp_path / "b.bin").read_bytes())
    (staged / "weights" / "w.bin").write_bytes((tmp_path / "weights" / "w.bin").read_bytes())
    printed = subprocess.run(
        ["sha256sum", "--", "b.bin", "model.onnx", "weights/w.bin"],
        cwd=staged,
        capture_output=True,
        check=True,
    ).stdout
    assert files.digest == hashlib.sha256(printed).hexdigest()
    assert files.total_bytes == sum(f.stat().st_size for f in staged.rglob("*") if f.is_file())


def test_any_changed_file_changes_the_digest(tmp_path: Path) -> None:
    model = external_data_model(tmp_path / "ext.onnx")
    before = model_files(model).digest
    data = tmp_path / "ext.onnx.data"
    data.write_bytes(bytes(len(data.read_bytes())))
    assert model_files(model).digest != before


def test_a_companion_named_like_the_staged_model_is_refused(tmp_path: Path) -> None:
    model = external_data_model(tmp_path / "ext.onnx", {"W": "model.onnx", "b": "b.bin"})
    with pytest.raises(ModelError, match=r"a companion file is named model\.onnx"):
        model_files(model)


def test_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        model_files(tmp_path / "absent.onnx")


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        ("/r/blobs/d", "../x"),
        ("/r/blobs/d", "a/../../x"),
        ("/r/blobs/d", "/etc/passwd"),
        ("/r/blobs/d", "a//b"),
        ("/r/blobs/d", "w\n.bin"),
        ("/elsewhere", "x"),
        ("/r", "x"),
    ],
)
def test_paths_inside_a_directory_stay_under_the_root(directory: str, name: str) -> None:
    with pytest.raises(UsageError, match="refusing remote path"):
        Layout("/r").inside(directory, name)


def test_paths_inside_a_directory() -> None:
    layout = Layout("/r")
    assert layout.inside("/r/blobs/d", "weights/w.bin") == "/r/blobs/d/weights/w.bin"
    assert layout.blob_dir("d") == "/r/blobs/d"
    assert layout.blob("abc", ".ort") == "/r/blobs/abc.ort"
