"""``edgeship ab`` over real SSH: one device, a fleet with a pooled result, a device down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeship.ab.result import FASTER, ABReport
from edgeship.cli.main import main as edgeship
from tools.testbed import Testbed

FAST = ("--threads", "1", "--sessions", "6", "--block", "5", "--runs", "40", "--warmup", "5",
        "--min-seconds", "0")  # fmt: skip


def ab(bed: Testbed, *args: str) -> list[str]:
    return ["ab", *args, *FAST, "--ssh-config", str(bed.ssh_config), "--targets", str(bed.targets)]


def host_accuracy(model: Path, data: Path) -> float:
    with np.load(data) as d:
        images, labels = d["input"], d["labels"]
    logits = ort.InferenceSession(str(model)).run(None, {"input": images})[0]
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def test_ab_on_one_device_over_ssh(
    clean_testbed: Testbed, zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = clean_testbed.devices[0]
    data = zoo / "digits_test.npz"
    argv = ab(clean_testbed, str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), "--target", dev.name)
    status = edgeship([*argv, "--data", str(data), "--min-speedup", "1.3", "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    report = ABReport.from_json(out)
    [device] = report.devices
    assert device.target["kind"] == "ssh" and device.target["name"] == dev.name
    cnn, mlp = device.models
    assert cnn.path == str(zoo / "cnn.onnx") and cnn.latency.n == 60
    assert cnn.memory is not None and mlp.memory is not None  # each in its own process
    assert cnn.accuracy is not None and mlp.accuracy is not None
    assert cnn.accuracy.accuracy == pytest.approx(host_accuracy(zoo / "cnn.onnx", data))
    assert mlp.accuracy.accuracy == pytest.approx(host_accuracy(zoo / "mlp.onnx", data))
    [c] = device.comparisons
    assert c.verdict == FASTER and c.latency_ratio_ci.high < 1.0
    assert report.passed and [g.passed for g in report.gates] == [True]


def test_ab_on_a_fleet_gives_per_device_and_pooled_results(
    clean_testbed: Testbed, zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [d.name for d in clean_testbed.devices[:2]]
    argv = ab(clean_testbed, str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), "--no-memory")
    status = edgeship([*argv, "--target", ",".join(names), "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    report = ABReport.from_json(out)
    assert [d.target["name"] for d in report.devices] == names
    assert all(d.comparisons[0].verdict == FASTER for d in report.devices)
    [pooled] = report.pooled
    assert pooled.devices == names and pooled.verdict == FASTER
    assert pooled.speedup_ci.low > 1.0


def test_ab_fleet_with_a_device_down_reports_the_rest_and_exits_1(
    clean_testbed: Testbed, zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up, down = clean_testbed.devices[2], clean_testbed.devices[3]
    clean_testbed.blackhole(down)
    argv = ab(clean_testbed, str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), "--no-memory")
    argv += ["--target", f"{up.name},{down.name}", "--connect-timeout", "2", "--json"]
    status = edgeship(argv)
    out, err = capsys.readouterr()
    assert status == 1
    report = ABReport.from_json(out)
    assert [d.target["name"] for d in report.devices] == [up.name]
    [failure] = report.failures
    assert failure.target == down.name and failure.type == "ConnectError"
    assert not report.passed and report.pooled == []
    assert f"error: {down.name}: " in err and "Traceback" not in err
