"""The model format table: suffixes, identifiers, default backends, companion files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from onnx import GraphProto, TensorProto, helper

from edgeship_runtime import formats, model
from edgeship_runtime.backends import backend_names, default_backend, get_backend
from edgeship_runtime.backends.base import backends_for_format
from edgeship_runtime.errors import ModelError, UsageError
from edgeship_runtime.formats import (
    FORMATS,
    companion_files,
    detect_format,
    format_for_suffix,
    known_suffixes,
    staged_suffix,
)
from edgeship_runtime.onnx_external import external_data_files
from tests import models
from tests.external_data import external_data_model

TFLITE_HEAD = b"\x1c\x00\x00\x00TFL3\x00\x00\x00\x00"  # a flatbuffer with its identifier
ALL_SUFFIXES = [(s, f.name) for f in FORMATS for s in f.suffixes]


def test_the_table_is_what_is_documented() -> None:
    assert {f.name: f.suffixes for f in FORMATS} == {
        "onnx": (".onnx", ".ort"),
        "tflite": (".tflite", ".lite"),
    }
    assert known_suffixes() == [".lite", ".onnx", ".ort", ".tflite"]
    assert model.detect_format is detect_format  # the old import path still works


@pytest.mark.parametrize(("suffix", "fmt"), ALL_SUFFIXES)
def test_every_suffix_names_its_format(suffix: str, fmt: str) -> None:
    assert format_for_suffix(suffix) == fmt
    assert format_for_suffix(suffix.upper()) == fmt


@pytest.mark.parametrize("suffix", ["", ".pt", ".bin", "onnx", ".onnx.data"])
def test_other_suffixes_name_no_format(suffix: str) -> None:
    assert format_for_suffix(suffix) is None


@pytest.mark.parametrize(("suffix", "fmt"), ALL_SUFFIXES)
def test_detection_by_suffix_and_identifier(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = tmp_path / f"model{suffix.upper()}"
    path.write_bytes(TFLITE_HEAD if fmt == "tflite" else b"\x08\x08protobuf")
    assert detect_format(str(path)) == fmt


def test_the_identifier_wins_over_the_suffix(tmp_path: Path) -> None:
    for name in ("model.bin", "model.onnx", "model"):
        (tmp_path / name).write_bytes(TFLITE_HEAD)
        assert detect_format(str(tmp_path / name)) == "tflite"


def test_a_suffix_whose_identifier_is_missing(tmp_path: Path) -> None:
    path = models.text_file(tmp_path / "notes.lite")
    with pytest.raises(ModelError, match=r"notes.lite: not a TFLite model \(no TFL3 identifier\)"):
        detect_format(str(path))


def test_unknown_format_lists_every_known_suffix(tmp_path: Path) -> None:
    path = models.text_file(tmp_path / "model.pt")
    with pytest.raises(ModelError) as caught:
        detect_format(str(path))
    assert str(caught.value) == (
        f"{path}: unknown model format (known suffixes: .lite, .onnx, .ort, .tflite)"
    )


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        detect_format(str(tmp_path / "absent.onnx"))
    with pytest.raises(ModelError, match="no such model file"):
        detect_format(str(tmp_path))
    with pytest.raises(ModelError, match="the model file is empty"):
        detect_format(str(models.empty_file(tmp_path / "empty.tflite")))


@pytest.mark.parametrize("fmt", [f.name for f in FORMATS])
def test_each_default_backend_is_registered_and_reads_its_format(fmt: str) -> None:
    backend = default_backend(fmt)
    assert backend in backend_names()
    assert fmt in get_backend(backend).formats
    assert backends_for_format(fmt)[0] == backend


def test_unknown_format_name() -> None:
    with pytest.raises(UsageError, match=r"unknown model format 'coreml' \(known: onnx, tflite\)"):
        default_backend("coreml")


def test_duplicate_rows_are_refused() -> None:
    onnx, tflite = FORMATS
    with pytest.raises(ValueError, match="listed twice"):
        formats._index((onnx, onnx))
    clash = formats.ModelFormat("x", "X", (".onnx",))
    with pytest.raises(ValueError, match=r"suffix \.onnx belongs to onnx and x"):
        formats._index((onnx, tflite, clash))


@pytest.mark.parametrize(
    ("name", "content", "suffix"),
    [
        ("m.onnx", b"\x08\x08", ".onnx"),
        ("m.ORT", b"\x08\x08", ".ort"),  # ONNX Runtime tells ORT files by this suffix
        ("m.lite", TFLITE_HEAD, ".lite"),
        ("m.bin", TFLITE_HEAD, ".tflite"),
    ],
)
def test_staged_suffix(tmp_path: Path, name: str, content: bytes, suffix: str) -> None:
    (tmp_path / name).write_bytes(content)
    assert staged_suffix(str(tmp_path / name)) == suffix


# -- companion files --------------------------------------------------------------------


def test_single_file_models_have_no_companions(add_onnx: Path, tmp_path: Path) -> None:
    assert companion_files(str(add_onnx)) == []
    (tmp_path / "m.tflite").write_bytes(TFLITE_HEAD)
    assert companion_files(str(tmp_path / "m.tflite")) == []


def test_onnx_external_data_file_is_found(tmp_path: Path) -> None:
    path = external_data_model(tmp_path / "big.onnx")  # onnx.save(save_as_external_data=True)
    assert companion_files(str(path)) == ["big.onnx.data"]


def test_several_companions_in_subdirectories(tmp_path: Path) -> None:
    locations = {"W": "weights/w.bin", "b": "./b.bin"}
    path = external_data_model(tmp_path / "m.onnx", locations)
    assert companion_files(str(path)) == ["b.bin", "weights/w.bin"]


def test_a_missing_companion_is_named(tmp_path: Path) -> None:
    path = external_data_model(tmp_path / "big.onnx")
    os.remove(tmp_path / "big.onnx.data")
    with pytest.raises(ModelError, match=r"big.onnx: companion file big.onnx.data is missing"):
        companion_files(str(path))


def _external(name: str, location: str, external: bool = True) -> TensorProto:
    """A tensor that says its bytes are in ``location`` (never read here)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[1])
    if external:
        tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def _write(path: Path, graph: GraphProto) -> Path:
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def _crafted(path: Path, *locations: str, external: bool = True) -> Path:
    """A model file whose initializers claim external data at ``locations``."""
    tensors = [_external(f"t{i}", loc, external) for i, loc in enumerate(locations)]
    return _write(path, helper.make_graph([], "crafted", [], [], initializer=tensors))


@pytest.mark.parametrize(
    "location",
    ["../secret.bin", "/etc/passwd", "a/../../secret.bin", "a\\..\\b.bin", "w\n.bin", "", "."],
)
def test_escaping_companion_names_are_refused(tmp_path: Path, location: str) -> None:
    path = _crafted(tmp_path / "m.onnx", location)
    with pytest.raises(ModelError, match="refusing companion file name"):
        companion_files(str(path))


def test_a_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"secret")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").symlink_to(tmp_path / "secret.bin")
    path = _crafted(tmp_path / "model" / "m.onnx", "w.bin")
    with pytest.raises(ModelError, match=r"file w\.bin: it resolves to .*secret"):
        companion_files(str(path))


def test_a_symlink_within_the_directory_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(b"1234")
    (tmp_path / "w.bin").symlink_to("real.bin")
    assert companion_files(str(_crafted(tmp_path / "m.onnx", "w.bin"))) == ["w.bin"]


def test_a_companion_must_be_a_data_file(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    path = _crafted(tmp_path / "m.onnx", "weights")
    with pytest.raises(ModelError, match="companion file weights is not a data file"):
        companion_files(str(path))
    path = _crafted(tmp_path / "m.onnx", "m.onnx")
    with pytest.raises(ModelError, match=r"companion file m\.onnx is not a data file"):
        companion_files(str(path))


def test_locations_of_tensors_not_marked_external_are_ignored(tmp_path: Path) -> None:
    path = _crafted(tmp_path / "m.onnx", "w.bin", external=False)
    assert external_data_files(str(path)) == []


def test_external_data_in_subgraphs_attributes_and_sparse_tensors(tmp_path: Path) -> None:
    branch = helper.make_graph([], "branch", [], [], initializer=[_external("t", "then.bin")])
    sparse = helper.make_sparse_tensor(
        _external("v", "sparse.bin"), helper.make_tensor("i", TensorProto.INT64, [1], [0]), [4]
    )
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch),
        helper.make_node("Constant", [], ["k"], value=_external("k", "constant.bin")),
    ]
    graph = helper.make_graph(nodes, "outer", [], [], sparse_initializer=[sparse])
    found = external_data_files(str(_write(tmp_path / "outer.onnx", graph)))
    assert sorted(found) == ["constant.bin", "sparse.bin", "then.bin"]


def test_a_damaged_onnx_file_has_no_companions_to_report(tmp_path: Path) -> None:
    """Loading reports the damage, in the backend's words; discovery does not guess."""
    text = models.text_file(tmp_path / "notes.onnx")
    assert companion_files(str(text)) == []
    whole = external_data_model(tmp_path / "big.onnx").read_bytes()
    for cut in (1, 7, len(whole) // 2):
        (tmp_path / "cut.onnx").write_bytes(whole[:cut])
        assert external_data_files(str(tmp_path / "cut.onnx")) in ([], ["big.onnx.data"])
