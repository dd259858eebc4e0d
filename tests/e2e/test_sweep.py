"""Sweeps over the real testbed: 3 variants × 4 boards on threads and on a local Ray cluster
(the same report either way), a board lost mid-sweep, and a re-run that does only the rest."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from edgeship.core.config import ConnectOptions, Timeouts
from edgeship.sweep import LocalExecutor, SweepConfig, SweepEvent, SweepReport, run_sweep
from edgeship.sweep._report import Policy
from tests.e2e.conftest import cli
from tools.testbed import Testbed

HAS_RAY = importlib.util.find_spec("ray") is not None

RECIPE = """
[variants.int8]
method = "int8-dynamic"

[variants.half]
method = "fp16"

[variants.sparse]
method = "prune"
sparsity = 0.5
"""

QUICK = Policy(runs=40, sessions=6, block=5, warmup=2, memory_runs=5, min_seconds=0.02)
QUICK_ARGS = [
    "--runs", "40", "--sessions", "6", "--block", "5", "--warmup", "2", "--memory-runs", "5",
    "--min-seconds", "0.02",
]  # fmt: skip


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "recipe.toml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def quick_connect(testbed: Testbed) -> ConnectOptions:
    """Short timeouts: a board that vanishes is known as gone within seconds."""
    return ConnectOptions(
        ssh_config=testbed.ssh_config,
        targets_file=testbed.targets,
        timeouts=Timeouts(connect=2, auth=2, command=60, unresponsive=3),
    )


def _config(zoo: Path, recipe: Path, out: Path, connect: ConnectOptions) -> SweepConfig:
    return SweepConfig(
        model=zoo / "mlp.onnx",
        recipe=recipe,
        targets="testbed",
        out=out,
        eval_data=zoo / "digits_test.npz",
        policy=QUICK,
        connect=connect,
    )


@pytest.fixture(scope="module")
def on_threads(
    testbed: Testbed,
    zoo: Path,
    recipe: Path,
    quick_connect: ConnectOptions,
    tmp_path_factory: pytest.TempPathFactory,
) -> SweepReport:
    out = tmp_path_factory.mktemp("threads")
    with LocalExecutor(quick_connect, cpus=2) as executor:
        return run_sweep(_config(zoo, recipe, out, quick_connect), executor)


def _check_complete(report: SweepReport, testbed: Testbed) -> None:
    names = [d.name for d in testbed.devices]
    assert report.boards == names and report.complete
    assert [v.name for v in report.variants] == ["int8", "half", "sparse"]
    assert len(report.cells) == 12 and all(c.ok for c in report.cells)
    for cell in report.cells:
        r = cell.result
        assert r is not None and r.p50_ms > 0 and r.speedup > 0 and r.backend == "onnxruntime"
        assert r.accuracy is not None and r.accuracy > 0.9  # on the board, on held-out digits
        assert r.peak_rss_mb is not None and r.peak_rss_mb > 0
    assert [f.board for f in report.fronts] == names
    assert all(f.front and f.done == 3 for f in report.fronts)
    assert report.across.front and report.across.excluded == []
    assert "accuracy_drop_pp_mean" in report.across.objectives


def test_a_sweep_on_threads(on_threads: SweepReport, testbed: Testbed) -> None:
    _check_complete(on_threads, testbed)
    assert on_threads.executor == "threads" and on_threads.run.measured == 12


def _shape(data: Any) -> Any:
    """The report's structure: keys all the way down (values left out)."""
    if isinstance(data, dict):
        return {key: _shape(value) for key, value in data.items()}
    if isinstance(data, list):
        return sorted({json.dumps(_shape(item), sort_keys=True) for item in data})
    return None


@pytest.mark.ray
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (pip install 'edgeship[ray]')")
def test_the_same_sweep_on_a_local_ray_cluster(
    on_threads: SweepReport,
    testbed: Testbed,
    zoo: Path,
    recipe: Path,
    quick_connect: ConnectOptions,
    tmp_path: Path,
) -> None:
    from edgeship.sweep._ray_executor import RayExecutor

    with RayExecutor(quick_connect, cpus=2) as executor:
        report = run_sweep(_config(zoo, recipe, tmp_path, quick_connect), executor)
    _check_complete(report, testbed)
    assert report.executor == "ray"
    assert all(v.worker != on_threads.variants[0].worker for v in report.variants)
    assert _shape(report.to_dict()) == _shape(on_threads.to_dict())
    # the same recipe made the same bytes on Ray's workers as on threads here
    assert [v.sha256 for v in report.variants] == [v.sha256 for v in on_threads.variants]


def test_a_board_lost_mid_sweep_fails_its_cells_and_a_rerun_does_only_those(
    clean_testbed: Testbed,
    zoo: Path,
    recipe: Path,
    quick_connect: ConnectOptions,
    tmp_path: Path,
) -> None:
    lost = clean_testbed.devices[3]

    def pull_the_plug(event: SweepEvent) -> None:
        if event.kind == "cell" and event.board == lost.name and event.status == "done":
            clean_testbed.blackhole(lost)

    with LocalExecutor(quick_connect, cpus=2) as executor:
        first = run_sweep(_config(zoo, recipe, tmp_path, quick_connect), executor, pull_the_plug)
    failed = first.failed()
    assert failed and {c.board for c in failed} == {lost.name}
    assert len(failed) < 3  # it measured one before it was lost
    errors = [(c.error.type, c.error.message) if c.error else None for c in failed]
    assert all(e and e[0] in ("ConnectError", "RemoteTimeout") for e in errors), errors
    assert sum(c.ok for c in first.cells) == 12 - len(failed)

    clean_testbed.blackhole(lost, on=False)
    done = cli(
        clean_testbed, "sweep", str(zoo / "mlp.onnx"), str(recipe), "--target", "testbed",
        "--out", str(tmp_path), "--eval-data", str(zoo / "digits_test.npz"),
        "--ray", "off", "--json", *QUICK_ARGS, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    second = SweepReport.from_dict(json.loads(done.stdout))
    assert second.complete and second.run.compressed == 0
    assert second.run.measured == len(failed) and second.run.cells_reused == 12 - len(failed)
    assert f"@ {lost.name}:" in done.stderr and "(stored)" in done.stderr
