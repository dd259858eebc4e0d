"""The executor abstraction: choosing one, and the thread executor's guarantees (one cell
at a time per board, boards in parallel, compression within the declared CPUs)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edgeship.compress import QuantizeConfig
from edgeship.core.config import ConnectOptions
from edgeship.core.errors import ConnectError, UsageError
from edgeship.sweep import _executor as chooser
from edgeship.sweep import _local_executor as local_executor
from edgeship.sweep._local_executor import LocalExecutor, Slots
from edgeship.sweep._plan import Resources
from edgeship.sweep._report import DONE, FAILED, Cell, CellRecord, Policy, VariantRecord
from edgeship.sweep._work import CompressJob, MeasureJob, VariantOutcome


class Busy:
    """Records how many calls overlap, overall and per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def hold(self, key: str, seconds: float) -> None:
        with self.lock:
            self.now[key] += 1
            self.now["*"] += 1
            self.peak[key] = max(self.peak[key], self.now[key])
            self.peak["*"] = max(self.peak["*"], self.now["*"])
        time.sleep(seconds)
        with self.lock:
            self.now[key] -= 1
            self.now["*"] -= 1


def _job(variant: str, board: str) -> MeasureJob:
    return MeasureJob(variant, board, Path("base.onnx"), Path(f"{variant}.onnx"), "f", Policy())


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch) -> Busy:
    busy = Busy()

    def measure(target: Any, job: MeasureJob) -> CellRecord:
        busy.hold(job.board, 0.05)
        return CellRecord(Cell(job.variant, job.board, DONE), job.fingerprint, "t")

    def open_target(name: str, connect: ConnectOptions) -> str:
        if name == "typo":
            raise ConnectError(f"{name}: name or service not known", target=name)
        return name

    monkeypatch.setattr(local_executor, "measure_cell", measure)
    monkeypatch.setattr(local_executor, "open_target", open_target)
    return busy


def test_one_cell_at_a_time_per_board_and_boards_at_once(busy: Busy) -> None:
    with LocalExecutor(ConnectOptions()) as executor:
        futures = [executor.measure(_job(v, b)) for v in "abcd" for b in ("x", "y", "z")]
        records = [f.result(timeout=10) for f in futures]
    assert all(r.cell.status == DONE for r in records)
    assert busy.peak["x"] == busy.peak["y"] == busy.peak["z"] == 1
    assert busy.peak["*"] == 3


def test_forks_bound_the_boards_measured_at_once(busy: Busy) -> None:
    with LocalExecutor(ConnectOptions(), forks=2) as executor:
        futures = [executor.measure(_job("v", b)) for b in "abcdef"]
        [f.result(timeout=10) for f in futures]
    assert busy.peak["*"] == 2


def test_a_board_that_cannot_be_opened_fails_its_cells(busy: Busy) -> None:
    with LocalExecutor(ConnectOptions()) as executor:
        record = executor.measure(_job("v", "typo")).result(timeout=10)
    assert record.cell.status == FAILED and record.cell.error is not None
    assert record.cell.error.type == "ConnectError"


def test_compressions_share_the_cpus_they_declare(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = Busy()

    def compress(job: CompressJob) -> VariantOutcome:
        busy.hold("cpu", 0.05)
        return VariantOutcome(VariantRecord(job.variant, "m", "f", DONE))

    monkeypatch.setattr(local_executor, "compress_variant", compress)

    def job(name: str, cpus: float) -> CompressJob:
        config = QuantizeConfig("fp16")
        return CompressJob(name, config, Path("b.onnx"), None, Path("o"), "o", "f", Resources(cpus))

    with LocalExecutor(ConnectOptions(), cpus=2) as executor:
        light = [executor.compress(job(f"l{i}", 1.0)) for i in range(4)]
        [f.result(timeout=10) for f in light]
        assert busy.peak["cpu"] == 2
        busy.peak.clear()
        heavy = [executor.compress(job(f"h{i}", 2.0)) for i in range(3)]
        [f.result(timeout=10) for f in heavy]
        assert busy.peak["cpu"] == 1


def test_slots_hand_out_at_most_the_total() -> None:
    slots = Slots(2.0)
    with slots.held(5.0):  # more than there is: all of it
        assert slots.free == 0.0
    assert slots.free == 2.0


def test_without_ray_installed_threads_and_asking_for_ray_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chooser, "ray_installed", lambda: False)
    with chooser.open_executor(None, ConnectOptions(), boards=100) as executor:
        assert executor.name == "threads"
    with chooser.open_executor("off", ConnectOptions()) as executor:
        assert executor.name == "threads"
    for asked in ("local", "auto", "10.0.0.1:6379"):
        with pytest.raises(UsageError, match="Ray is not installed"):
            chooser.open_executor(asked, ConnectOptions())
    with pytest.raises(UsageError, match="Ray Client"):
        chooser.open_executor("ray://head:10001", ConnectOptions())


def test_ray_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chooser, "ray_installed", lambda: True)
    monkeypatch.delenv(chooser.RAY_ADDRESS, raising=False)
    assert not chooser.use_ray(None, boards=1, forks=16)  # a local sweep: threads
    assert not chooser.use_ray(None, boards=16, forks=16)
    assert chooser.use_ray(None, boards=17, forks=16)  # more boards than threads at once
    assert not chooser.use_ray("off", boards=100, forks=1)
    assert all(chooser.use_ray(asked) for asked in ("local", "auto", "head:6379"))
    monkeypatch.setenv(chooser.RAY_ADDRESS, "head:6379")  # a cluster named
    assert chooser.use_ray(None, boards=1)


SWEEP_ON_LOCAL = """
import sys
from edgeship.cli.main import main
status = main(sys.argv[1:])
print("ray imported:", "ray" in sys.modules)
sys.exit(status)
"""


def test_a_sweep_on_local_starts_threads_without_importing_ray(zoo: Path, tmp_path: Path) -> None:
    """The real command on the zoo's MLP: one variant, one board (``local``)."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[variants.half]\nmethod = "fp16"\n')
    argv = ["sweep", zoo / "mlp.onnx", recipe, "--target", "local", "--out", tmp_path / "out"]
    argv += ["--runs", "20", "--sessions", "6", "--block", "5", "--warmup", "2", "--no-memory"]
    argv += ["--min-seconds", "0"]  # 20 runs a session: no 0.25 s window per model
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_ON_LOCAL, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("ray imported: False")
    assert "(threads;" in done.stdout  # the report names its executor
    assert "warning" not in done.stderr.lower(), done.stderr
    assert (tmp_path / "out" / "sweep.html").is_file()
