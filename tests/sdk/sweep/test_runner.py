"""The sweep's driver against a fake executor: what it asks for, stores, reuses and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import UsageError
from edgeship.sweep import SweepConfig, SweepEvent, SweepReport, run_sweep
from edgeship.sweep._report import Policy
from tests import models
from tests.sdk.sweep.fakes import FakeExecutor

BOARDS = ["pi-1", "pi-2", "jetson"]

RECIPE = """
[variants.fast]
method = "int8-dynamic"

[variants.small]
method = "fp16"

[variants.slow]
method = "prune"
sparsity = 0.3
"""


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A targets file naming three boards (never connected to: the executor is fake)."""
    devices = "".join(f'[devices.{b}]\nhost = "{b}.lab"\n\n' for b in BOARDS)
    path = tmp_path / "lab.toml"
    path.write_text(devices + f"[groups]\nlab = {json.dumps(BOARDS)}\n")
    return path


@pytest.fixture
def config(tmp_path: Path, lab: Path) -> SweepConfig:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    model = models.add_model(tmp_path / "base.onnx")
    return SweepConfig(
        model, recipe, "lab", tmp_path / "out", connect=ConnectOptions(targets_file=lab)
    )


def test_every_variant_is_made_once_and_measured_on_every_board(config: SweepConfig) -> None:
    executor = FakeExecutor()
    events: list[SweepEvent] = []
    report = run_sweep(config, executor, events.append)
    assert executor.made == ["fast", "small", "slow"]
    assert sorted(executor.measured) == sorted((v, b) for v in executor.made for b in BOARDS)
    assert report.complete and report.executor == "fake" and report.boards == BOARDS
    assert [c.variant for c in report.cells] == [v for v in executor.made for _ in BOARDS]
    assert (report.run.compressed, report.run.measured, report.run.cells_reused) == (3, 9, 0)
    cells = [e for e in events if e.kind == "cell"]
    assert [e.done for e in cells] == list(range(1, 10)) and cells[-1].total == 9
    out = config.out
    assert len(list((out / "cells").glob("*.json"))) == 9
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "fast.json", "fast.onnx", "slow.json", "slow.onnx", "small.json", "small.onnx",
    ]  # fmt: skip
    again = SweepReport.from_json((out / "sweep.json").read_text())
    assert again.to_dict() == report.to_dict()
    assert (out / "sweep.md").read_text().startswith("# Sweep of")


def test_the_recipes_output_kinds_judge_every_variant(config: SweepConfig) -> None:
    config.recipe.write_text('[options]\noutput_kinds = { y = "map" }\n' + RECIPE)
    executor = FakeExecutor()
    run_sweep(config, executor)
    assert [dict(j.guard.output_kinds) for j in executor.jobs] == [{"y": "map"}] * 3


def test_fronts_per_board_and_across_boards(config: SweepConfig) -> None:
    report = run_sweep(config, FakeExecutor())
    for front in report.fronts:
        assert front.objectives == ["p50_ms", "size_bytes"]
        # the fake cells all say 100 bytes (base 400): the quickest alone is on the front
        assert front.front == ["fast"] and front.base_p50_ms == 1.0
    across = report.across
    assert across.front == ["fast"] and across.excluded == []
    assert {p.variant: p.speedup_geomean for p in across.points} == pytest.approx(
        {"fast": 2.0, "small": 1.2, "slow": 0.8}
    )


def test_a_rerun_does_nothing_that_is_done(config: SweepConfig) -> None:
    run_sweep(config, FakeExecutor())
    executor = FakeExecutor()
    report = run_sweep(config, executor)
    assert executor.made == [] and executor.measured == []
    assert report.complete and (report.run.variants_reused, report.run.cells_reused) == (3, 9)


def test_a_rerun_measures_only_the_failed_cells(config: SweepConfig) -> None:
    first = run_sweep(config, FakeExecutor(failing=("jetson",)))
    assert not first.complete
    assert {(c.variant, c.board) for c in first.failed()} == {
        (v, "jetson") for v in ("fast", "small", "slow")
    }
    assert all(c.error and c.error.type == "ConnectError" for c in first.failed())
    assert [f.failed for f in first.fronts] == [0, 0, 3]
    executor = FakeExecutor()
    second = run_sweep(config, executor)
    assert executor.made == []
    assert sorted(executor.measured) == [
        ("fast", "jetson"),
        ("slow", "jetson"),
        ("small", "jetson"),
    ]
    assert second.complete and second.run.cells_reused == 6


def test_a_failed_variant_fails_its_cells_and_is_made_again(config: SweepConfig) -> None:
    first = run_sweep(config, FakeExecutor(broken=("small",)))
    small = [c for c in first.cells if c.variant == "small"]
    assert [c.status for c in small] == ["failed"] * 3 and all(c.file == "" for c in small)
    assert small[0].error is not None and "nothing to prune" in small[0].error.message
    assert first.across.excluded == ["small"]
    executor = FakeExecutor()
    run_sweep(config, executor)
    assert executor.made == ["small"] and len(executor.measured) == 3


def test_a_changed_policy_or_recipe_entry_redoes_what_depends_on_it(config: SweepConfig) -> None:
    from dataclasses import replace

    run_sweep(config, FakeExecutor())
    executor = FakeExecutor()
    run_sweep(replace(config, policy=Policy(runs=100)), executor)
    assert executor.made == [] and len(executor.measured) == 9
    config.recipe.write_text(RECIPE.replace("sparsity = 0.3", "sparsity = 0.4"))
    executor = FakeExecutor()
    run_sweep(replace(config, policy=Policy(runs=100)), executor)
    assert executor.made == ["slow"]
    # the fake makes the same bytes again, so its stored cells still hold
    assert executor.measured == []


def test_a_lost_model_file_is_made_again(config: SweepConfig) -> None:
    run_sweep(config, FakeExecutor())
    (config.out / "models" / "fast.onnx").unlink()
    executor = FakeExecutor()
    run_sweep(config, executor)
    assert executor.made == ["fast"] and executor.measured == []


def test_a_variant_that_needs_data_is_refused_without_it(config: SweepConfig) -> None:
    config.recipe.write_text('[variants.int8]\nmethod = "int8-static"\n')
    with pytest.raises(UsageError, match=r"int8 .*need data: give --data"):
        run_sweep(config, FakeExecutor())


def test_a_bad_policy_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="sessions"):
        SweepConfig("m.onnx", "r.toml", "lab", tmp_path, policy=Policy(sessions=2))
