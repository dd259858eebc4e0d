"""What a sweep redoes: fingerprints, reuse of stored variants and cells, declared resources."""

from __future__ import annotations

from dataclasses import replace

from edgeship.compress import ChannelPruneConfig, PruneConfig, QuantizeConfig, TrainConfig
from edgeship.compress.config import ChainConfig
from edgeship.sweep._plan import (
    Resources,
    cell_fingerprint,
    cell_reusable,
    plan_cells,
    resources_for,
    trains,
    variant_fingerprint,
    variant_reusable,
)
from edgeship.sweep._report import DONE, FAILED, Cell, CellRecord, Policy, VariantRecord

INT8 = QuantizeConfig("int8-static")


def test_a_variant_fingerprint_follows_its_inputs() -> None:
    fp = variant_fingerprint("aa", INT8, None)
    assert fp == variant_fingerprint("aa", QuantizeConfig("int8-static"), None)
    assert fp != variant_fingerprint("bb", INT8, None)  # another base
    assert fp != variant_fingerprint("aa", INT8, "dd")  # data given
    assert fp != variant_fingerprint("aa", QuantizeConfig("int8-static", per_channel=False), None)
    assert len(fp) == 32


def test_a_cell_fingerprint_follows_variant_board_policy_and_data() -> None:
    policy = Policy()
    fp = cell_fingerprint("aa", "vv", "pi-1", policy, None)
    assert fp == cell_fingerprint("aa", "vv", "pi-1", Policy(), None)
    others = [
        cell_fingerprint("aa", "ww", "pi-1", policy, None),
        cell_fingerprint("aa", "vv", "pi-2", policy, None),
        cell_fingerprint("aa", "vv", "pi-1", replace(policy, runs=100), None),
        cell_fingerprint("aa", "vv", "pi-1", policy, "ee"),
    ]
    assert fp not in others and len(set(others)) == 4


def _variant(status: str = DONE, fingerprint: str = "f", sha: str = "s") -> VariantRecord:
    return VariantRecord("v", "fp16", fingerprint, status, path="models/v.onnx", sha256=sha)


def test_a_stored_variant_is_reused_only_when_done_the_same_and_intact() -> None:
    assert variant_reusable(_variant(), "f", "s")
    assert not variant_reusable(None, "f", "s")
    assert not variant_reusable(_variant(FAILED), "f", "s")  # failed: made again
    assert not variant_reusable(_variant(), "g", "s")  # other inputs
    assert not variant_reusable(_variant(), "f", "")  # its model file is gone
    assert not variant_reusable(_variant(), "f", "t")  # ... or was replaced


def _cell(board: str, status: str = DONE, fingerprint: str = "f") -> CellRecord:
    return CellRecord(Cell("v", board, status), fingerprint, "2026-01-01T00:00:00+00:00")


def test_cells_done_with_the_same_fingerprint_are_reused_the_rest_measured() -> None:
    stored = {"a": _cell("a"), "b": _cell("b", FAILED), "c": _cell("c", fingerprint="old")}
    fingerprints = dict.fromkeys("abcd", "f")
    assert cell_reusable(stored["a"], "f") and not cell_reusable(None, "f")
    plan = plan_cells(_variant(), ["a", "b", "c", "d"], stored, fingerprints)
    assert plan.reused == ("a",)
    assert plan.todo == ("b", "c", "d")  # failed, stale, missing


def test_only_a_variant_that_trains_declares_more() -> None:
    no_epochs = ChannelPruneConfig(sparsity=0.5)
    tuned = ChannelPruneConfig(sparsity=0.5, fine_tune=TrainConfig(epochs=3))
    assert not trains(INT8) and not trains(no_epochs) and not trains(PruneConfig())
    assert trains(tuned) and trains(ChainConfig((tuned, INT8)))
    assert resources_for(INT8) == Resources(1.0, 0.0)
    assert resources_for(ChainConfig((tuned, INT8))) == Resources(2.0, 1.0)


def test_declared_resources_fit_the_cluster() -> None:
    training = Resources(2.0, 1.0)
    assert training.fit(cpus=8, gpus=2) == training
    assert training.fit(cpus=1, gpus=0) == Resources(1.0, 0.0)  # else it would never start
    assert Resources().fit(cpus=0.5, gpus=0) == Resources(0.5, 0.0)
