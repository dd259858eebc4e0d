"""Pure parts: core plans, the shard count default, slot layouts, wiring, manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.errors import ModelError, UsageError
from edgeship_runtime.parallel import plan_cpus, read_manifest, suggest_shards, wire
from edgeship_runtime.parallel.shm import ALIGN, Area, SharedSlots, SlotLayout
from tests.runtime.parallel.helpers import shm_entries


def test_plan_splits_cores_evenly_and_disjointly() -> None:
    assert plan_cpus(2, [0, 1, 2, 3]) == [(0, 1), (2, 3)]
    assert plan_cpus(3, [0, 1, 2, 3]) == [(0, 1), (2,), (3,)]
    assert plan_cpus(1, [4, 5]) == [(4, 5)]


def test_plan_shares_cores_round_robin_when_workers_outnumber_them() -> None:
    assert plan_cpus(3, [0, 1]) == [(0,), (1,), (0,)]
    assert plan_cpus(2, []) == [(), ()]
    with pytest.raises(ValueError):
        plan_cpus(0, [0])


def test_suggested_shards_follow_cores_threads_and_accelerators() -> None:
    assert suggest_shards(4) == 4
    assert suggest_shards(6, threads=2) == 3
    assert suggest_shards(1, threads=4) == 1
    assert suggest_shards(64) == 8
    assert suggest_shards(8, providers=("CUDAExecutionProvider", "CPUExecutionProvider")) == 1


def test_slot_layout_aligns_every_tensor_and_round_trips() -> None:
    areas = [Area("x", "float32", (1, 3)), Area("ids", "int64", (1, 5)), Area("y", "bool", (7,))]
    layout = SlotLayout(areas, slots=4, stamps=3)
    assert layout.data_start % ALIGN == 0 and layout.slot_bytes % ALIGN == 0
    assert all(offset % ALIGN == 0 for offset in layout.offsets.values())
    again = SlotLayout.from_wire(json.loads(json.dumps(layout.to_wire())))
    assert again.areas == layout.areas and again.size == layout.size
    with pytest.raises(ValueError):
        SlotLayout([areas[0], areas[0]], 1, 1)


def test_string_tensors_cannot_travel_in_slots() -> None:
    with pytest.raises(UsageError):
        Area.of("text", np.array(["a"]))


def test_a_segment_is_shared_and_its_name_can_go_before_its_memory() -> None:
    layout = SlotLayout([Area("x", "float32", (2, 2))], slots=2, stamps=1)
    owner = SharedSlots.create(layout)
    other = SharedSlots.attach(owner.name, layout)
    try:
        assert shm_entries(os.getpid())
        owner.views(1)["x"][...] = 7.0
        owner.stamps[1, 0] = 42
        owner.unlink()
        assert not shm_entries(os.getpid())  # the name is gone, the memory is not
        np.testing.assert_array_equal(other.views(1)["x"], np.full((2, 2), 7.0, np.float32))
        assert other.stamps[1, 0] == 42
    finally:
        other.close()
        owner.close()
    assert not shm_entries(os.getpid())


def test_wire_feeds_each_stage_by_name_from_the_request_and_earlier_stages() -> None:
    stages = [(["x"], ["h1"]), (["h1", "x"], ["y"])]
    areas, wiring, finals = wire(["x"], stages, ["y", "h1"])
    assert areas == ["x", "h1", "y"] and finals == ["y", "h1"]
    assert wiring[0] == ({"x": "x"}, [(0, "h1")])
    assert wiring[1] == ({"h1": "h1", "x": "x"}, [(0, "y")])


def test_wire_writes_a_passed_through_tensor_once_and_skips_unneeded_ones() -> None:
    stages = [(["x"], ["h", "x", "debug"]), (["h", "x"], ["y"])]
    areas, wiring, finals = wire(["x"], stages)
    assert finals == ["y"] and "debug" not in areas
    assert wiring[0][1] == [(0, "h")]  # x is the request's; debug nobody reads


def test_wire_names_what_is_missing() -> None:
    with pytest.raises(ModelError, match=r"stage 1 needs \['h2'\]"):
        wire(["x"], [(["x"], ["h1"]), (["h2"], ["y"])])
    with pytest.raises(ModelError, match="no stage produces"):
        wire(["x"], [(["x"], ["h1"])], ["y"])


def test_manifest_gives_the_stage_order_by_index(chain_stages: Path) -> None:
    plan = read_manifest(str(chain_stages))
    assert [Path(p).name for p in plan.stages] == ["stage_0.onnx", "stage_1.onnx"]
    assert plan.outputs == ("y", "h1")


def test_bad_manifests_are_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no manifest\.json"):
        read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"schema": "other/1", "stages": []}')
    with pytest.raises(ModelError, match="schema"):
        read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(
        '{"schema": "edgeship.partition/1", "stages": [{"index": 0, "file": "gone.onnx"}]}'
    )
    with pytest.raises(ModelError, match="missing"):
        read_manifest(str(tmp_path))
