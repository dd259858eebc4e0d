"""Canary rollouts over the real testbed: phases, gates on the health check, roll back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import UsageError
from edgeship.rollout import RolloutPlan, phase_sizes, rollout
from edgeship.targets import SSHTarget, open_target, open_targets
from tests.e2e.conftest import cli
from tools.testbed import Testbed


def _model(zoo: Path, tmp_path: Path, tag: str) -> Path:
    proto = onnx.load(str(zoo / "mlp.onnx"))
    proto.doc_string = f"{tag} {tmp_path.name}"
    path = tmp_path / f"{tag}.onnx"
    onnx.save(proto, str(path))
    return path


def _active(testbed: Testbed, connect: ConnectOptions, index: int, name: str) -> str | None:
    with open_target(testbed.devices[index].name, connect) as target:
        assert isinstance(target, SSHTarget)
        return target.store().active_version(name)


def _remove_everywhere(testbed: Testbed, connect: ConnectOptions, name: str) -> None:
    for dev in testbed.devices:
        with open_target(dev.name, connect) as target:
            assert isinstance(target, SSHTarget)
            if name in target.store().names():
                target.store().remove(name)


def test_phases_are_counts_or_percentages_of_the_group() -> None:
    assert phase_sizes(["1", "25%", "100%"], 8) == [1, 2, 8]
    assert phase_sizes(["1", "50%", "100%"], 4) == [1, 2, 4]
    assert phase_sizes(["10%", "100%"], 4) == [1, 4]
    for bad in (["1", "1", "100%"], ["2", "1", "100%"], ["1", "50%"], ["x", "100%"], ["9"]):
        with pytest.raises(UsageError):
            phase_sizes(bad, 4)


def test_a_rollout_through_every_phase(clean_testbed: Testbed, zoo: Path, tmp_path: Path) -> None:
    model = _model(zoo, tmp_path, "canary-ok")
    done = cli(clean_testbed, "rollout", str(model), "--target", "testbed",
               "--phases", "1,50%,100%", "--name", "canary", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["completed"] and report["phases"] == [1, 2, 4]
    assert [d["phase"] for d in report["devices"]] == [1, 2, 3, 3]
    assert {d["state"] for d in report["devices"]} == {"activated"}
    again_args = ["rollout", str(model), "--target", "testbed", "--phases", "1,100%"]
    again = json.loads(cli(clean_testbed, *again_args, "--name", "canary", "--json").stdout)
    assert {d["state"] for d in again["devices"]} == {"unchanged"}
    for dev in clean_testbed.devices:
        assert cli(clean_testbed, "rm", "canary", "--target", dev.name).returncode == 0


def test_a_failed_gate_stops_and_rolls_back_the_updated_devices(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """The second device's Python has no ONNX Runtime (a board set up wrong): its health
    check fails in phase 2. The first device goes back to its version, the last two are
    never touched."""
    bad = clean_testbed.devices[1].name
    targets = tmp_path / "edgeship.toml"
    text = clean_testbed.targets.read_text()
    block = text.index(f"[devices.{bad}]")
    end = text.index("\n[", block + 1)
    broken = text[block:end].replace(text[block:end].split("python = ")[1].split("\n")[0],
                                     '"/usr/bin/python3"')  # fmt: skip
    targets.write_text(text[:block] + broken + text[end:])
    options = dataclasses.replace(connect, targets_file=targets)
    first = _model(zoo, tmp_path, "canary-v1")
    for index in range(4):
        with open_target(clean_testbed.devices[index].name, connect) as target:
            assert isinstance(target, SSHTarget)
            target.deploy(first, "canary2")
    try:
        plan = RolloutPlan(phases=("1", "50%", "100%"), name="canary2")
        report = rollout(_model(zoo, tmp_path, "canary-v2"), open_targets("testbed", options), plan)
        assert not report.completed and report.stopped_at_phase == 2
        states = {d.target: d.state for d in report.devices}
        expected = ["rolled back", "failed", "skipped", "skipped"]
        assert states == dict(zip([d.name for d in clean_testbed.devices], expected, strict=True))
        failed = report.devices[1]
        assert "health check" in (failed.error or "") and failed.previous is None
        assert report.devices[0].previous == "v0001" and report.devices[0].version == "v0002"
        for index in range(4):
            assert _active(clean_testbed, connect, index, "canary2") == "v0001"
    finally:
        _remove_everywhere(clean_testbed, connect, "canary2")
