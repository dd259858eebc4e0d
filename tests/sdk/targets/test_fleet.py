"""Fleet runs: bounded forks, results as they finish, per-device deadlines, the CLI's table."""

from __future__ import annotations

import argparse
import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edgeship.cli import common
from edgeship.cli.fleet_view import FleetTable
from edgeship.core.client import Pipe
from edgeship.core.errors import ConnectError, RemoteTimeout, UsageError
from edgeship.targets import Target
from edgeship.targets.fleet import DEFAULT_FORKS, DeviceResult, FleetProgress, run_each


class Fake(Target):
    """A target that is never connected: the operations under test never touch it."""

    kind = "fake"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.closed = 0

    def start_pipe(self) -> Pipe:
        raise AssertionError("not used")

    def stage_model(self, path: Path) -> str:
        raise AssertionError("not used")

    def close(self) -> None:
        self.closed += 1


def fakes(n: int) -> list[Target]:
    return [Fake(f"dev{i}") for i in range(n)]


class Gauge:
    """Counts operations running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def op(self, seconds: float) -> Any:
        def operation(target: Target) -> str:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(seconds)
            with self.lock:
                self.now -= 1
            return target.name.upper()

        return operation


def test_at_most_forks_run_at_once_and_results_keep_the_targets_order() -> None:
    gauge = Gauge()
    targets = fakes(12)
    results = run_each(targets, gauge.op(0.05), forks=4)
    assert gauge.peak == 4
    assert [r.target for r in results] == [t.name for t in targets]
    assert [r.value for r in results] == [f"DEV{i}" for i in range(12)]
    assert all(r.ok and r.elapsed_s >= 0.04 for r in results)
    assert all(t.closed == 1 for t in targets if isinstance(t, Fake))


def test_wall_time_grows_as_devices_over_forks() -> None:
    t0 = time.monotonic()
    run_each(fakes(16), Gauge().op(0.1), forks=8)
    two_waves = time.monotonic() - t0
    assert 0.2 <= two_waves < 1.0  # queued behind the first 8, but not one by one (1.6 s)


def test_the_default_is_twenty_at_once() -> None:
    gauge = Gauge()
    run_each(fakes(30), gauge.op(0.05))
    assert DEFAULT_FORKS == 20 and gauge.peak == 20


def test_results_are_handed_over_as_each_device_finishes() -> None:
    seen: list[tuple[str, FleetProgress, float]] = []
    t0 = time.monotonic()

    def slow_first(target: Target) -> str:
        time.sleep(0.3 if target.name == "dev0" else 0.01)
        return target.name

    def on_result(result: DeviceResult[Any], progress: FleetProgress) -> None:
        seen.append((result.target, progress, time.monotonic() - t0))

    run_each(fakes(3), slow_first, forks=3, on_result=on_result)
    assert [name for name, _, _ in seen][-1] == "dev0"
    assert seen[0][2] < 0.2  # the quick ones did not wait for the slow one
    assert [p.done for _, p, _ in seen] == [1, 2, 3]
    assert seen[-1][1] == FleetProgress(done=3, running=0, queued=0, total=3)


def test_progress_counts_the_queue() -> None:
    progress: list[FleetProgress] = []
    run_each(fakes(5), Gauge().op(0.02), forks=2, on_result=lambda r, p: progress.append(p))
    first = progress[0]
    assert first.done == 1 and first.running + first.queued == 4 and first.total == 5


def test_a_failing_device_is_recorded_and_the_others_go_on() -> None:
    def op(target: Target) -> str:
        if target.name == "dev1":
            raise ConnectError("dev1: connection refused", target="dev1")
        return "ok"

    results = run_each(fakes(3), op, forks=2)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_dict() == {
        "type": "ConnectError",
        "message": "dev1: connection refused",
    }


def test_a_bug_raises() -> None:
    def op(target: Target) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_each(fakes(2), op)


def test_a_device_past_its_deadline_is_reported_without_waiting_for_it() -> None:
    release = threading.Event()

    def op(target: Target) -> str:
        if target.name == "dev0":
            release.wait(10)  # hangs until the test ends
        return target.name

    targets = fakes(4)
    t0 = time.monotonic()
    try:
        results = run_each(targets, op, forks=2, device_timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - t0 < 2
    assert isinstance(results[0].error, RemoteTimeout) and "0.3 s" in str(results[0].error)
    assert [r.value for r in results[1:]] == ["dev1", "dev2", "dev3"]
    deadline = time.monotonic() + 2
    while targets[0].closed == 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    assert targets[0].closed >= 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("forks", "timeout"), [(0, None), (2, 0.0)])
def test_bad_limits_are_refused(forks: int, timeout: float | None) -> None:
    with pytest.raises(UsageError):
        run_each(fakes(1), Gauge().op(0), forks=forks, device_timeout=timeout)


# ---------------------------------------------------------------------------- the view


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_table_prints_a_row_per_device_as_it_finishes() -> None:
    out, status = io.StringIO(), io.StringIO()
    view = FleetTable(["pi-kitchen", "b"], lambda v: f"{v} line 1\nline 2", out, status)
    view.row(DeviceResult("b", value="hello", elapsed_s=1.25), FleetProgress(1, 1, 0, 2))
    assert out.getvalue().splitlines() == [
        "device      status     time  result",
        "b           ok        1.2 s",
        "    hello line 1",
        "    line 2",
    ]
    one_line = FleetTable(["b"], str, out, status)
    one_line.row(DeviceResult("b", value="deployed", elapsed_s=1), FleetProgress(1, 0, 0, 1))
    assert out.getvalue().splitlines()[-1] == "b       ok        1.0 s  deployed"
    error = ConnectError("pi-kitchen: timed out\nafter 10 s", target="pi-kitchen")
    view.row(DeviceResult("pi-kitchen", error=error, elapsed_s=10), FleetProgress(2, 0, 0, 2))
    assert out.getvalue().splitlines()[-1] == (
        "pi-kitchen  failed   10.0 s  ConnectError: pi-kitchen: timed out after 10 s"
    )
    assert status.getvalue() == ""  # not a terminal: no status line


def test_on_a_terminal_a_status_line_follows_the_rows() -> None:
    out, status = io.StringIO(), Terminal()
    view = FleetTable(["a", "b", "c"], str, out, status)
    view.row(DeviceResult("a", value=1), FleetProgress(1, 2, 0, 3))
    assert status.getvalue().endswith("1/3 done, 2 running, 0 queued")
    view.row(DeviceResult("b", value=2), FleetProgress(2, 1, 0, 3))
    assert status.getvalue().endswith("\r\033[K2/3 done, 1 running, 0 queued")


def _namespace(**given: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(parents=[common.target_options()])
    ns = parser.parse_args([])
    ns.command, ns.ssh_config, ns.targets = "test", None, None
    for key, value in given.items():
        setattr(ns, key, value)
    return ns


def test_on_targets_streams_rows_and_says_which_failed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common, "targets_from_args", lambda ns: fakes(3))

    def op(target: Target) -> str:
        if target.name == "dev2":
            raise ConnectError("dev2: unreachable", target="dev2")
        return f"hello from {target.name}"

    rc = common.on_targets(_namespace(target="lab", forks=2), op, str, str)
    out, err = capsys.readouterr()
    assert rc == 1
    rows = out.splitlines()
    assert rows[0].split() == ["device", "status", "time", "result"]
    assert sorted(r.split()[0] for r in rows[1:]) == ["dev0", "dev1", "dev2"]
    assert "failed" in next(r for r in rows if r.startswith("dev2"))
    assert err.strip().splitlines() == ["error: 1 of 3 devices failed: dev2"]


def test_on_targets_json_is_one_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.setattr(common, "targets_from_args", lambda ns: fakes(3))
    rc = common.on_targets(_namespace(target="lab", json=True), lambda t: t.name, str, str)
    out, _ = capsys.readouterr()
    assert rc == 0
    data = json.loads(out)
    assert data["ok"] and [r["result"] for r in data["results"]] == ["dev0", "dev1", "dev2"]


def test_parallel_is_the_former_name_of_forks(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(parents=[common.target_options()])
    assert parser.parse_args([]).forks == DEFAULT_FORKS
    assert parser.parse_args(["--forks", "50"]).forks == 50
    assert parser.parse_args(["--parallel", "3"]).forks == 3
    assert "--parallel is now --forks" in capsys.readouterr().err
