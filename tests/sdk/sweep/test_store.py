"""The sweep's directory: whole files only, unreadable records as missing, safe names;
older revisions of its records read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgeship.core.errors import UsageError
from edgeship.sweep._report import DONE, Cell, CellRecord, VariantRecord
from edgeship.sweep._store import Store, board_slug


def test_records_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "out")
    variant = VariantRecord("int8", "int8-static", "f", DONE, path="models/int8.onnx")
    store.write_variant(variant)
    assert store.variant("int8") == variant
    cell = CellRecord(Cell("int8", "pi@10.0.0.5:22", DONE), "g", "2026-01-01T00:00:00+00:00")
    path = store.write_cell(cell)
    assert path.name == f"int8@{board_slug('pi@10.0.0.5:22')}.json"
    assert cell.cell.file == path.relative_to(store.root).as_posix()
    assert store.cell("int8", "pi@10.0.0.5:22") == cell
    assert store.variant("absent") is None and store.cell("int8", "other") is None


def test_an_unreadable_record_counts_as_missing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.variant_path("v").parent.mkdir(parents=True)
    store.variant_path("v").write_text('{"name": "v", "status": "do')  # cut short
    assert store.variant("v") is None
    store.variant_path("v").write_text('{"schema": "edgeship.ab/1"}')  # another kind
    assert store.variant("v") is None


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_text(tmp_path / "a" / "x.json", "{}")
    store.write_text(tmp_path / "a" / "x.json", "[]")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]
    assert (tmp_path / "a" / "x.json").read_text() == "[]"


def test_board_names_become_distinct_file_names() -> None:
    assert board_slug("pi-kitchen") == "pi-kitchen"
    assert board_slug("pi@10.0.0.5").startswith("pi_10.0.0.5-")
    assert board_slug("pi@10.0.0.5") != board_slug("pi_10.0.0.5")


def test_a_cell_file_of_another_board_under_the_same_name_is_not_taken(tmp_path: Path) -> None:
    store = Store(tmp_path)
    record = CellRecord(Cell("v", "a", DONE), "f", "2026-01-01T00:00:00+00:00")
    store.write_text(store.cell_path("v", "b"), record.to_json())
    assert store.cell("v", "b") is None


def test_out_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        Store(tmp_path / "file")


def test_a_record_written_before_intervals_still_reads(tmp_path: Path) -> None:
    store = Store(tmp_path)
    variant = VariantRecord("int8", "int8-static", "f", DONE, accuracy=0.97)
    data = variant.to_dict()
    data["schema"] = "edgeship.sweep-variant/1"  # the revision without samples and intervals
    for key in ("samples", "accuracy_ci", "top1_agreement_ci"):
        del data[key]
    store.variant_path("int8").parent.mkdir(parents=True)
    store.variant_path("int8").write_text(json.dumps(data))
    assert store.variant("int8") == dataclasses.replace(variant, schema=data["schema"])
