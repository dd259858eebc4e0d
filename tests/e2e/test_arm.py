"""An emulated arm64 board, used as a user would use a new board: setup, deploy, profile,
A/B, rollback.

The board is Debian bookworm for arm64 under qemu-user (see ``tools/testbed/emulated.py``):
its own sshd, Python and flock, nothing installed for edgeship, no board name anywhere
(no device tree, no DMI), PyPI reachable through a host-side proxy only. Its root is
built once per machine (minutes) and cached; without the cache these tests skip on a
developer machine (``python -m tools.testbed rootfs aarch64`` builds it) and build it in
CI, where a skip would hide a broken setup.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.core.config import ConnectOptions, Timeouts
from edgeship.targets import SSHTarget, open_target
from tests.e2e.conftest import EMULATED_S, cli, cli_json, emulated_board
from tools.bench.onnx_backend_cases import cases, run_cases
from tools.testbed import Testbed
from tools.zoo.build import load_split, onnx_logits

pytestmark = pytest.mark.arm
ARCH = "aarch64"
ONNX_CASES = [  # strings both ways, and a handful of dtypes (tests/tools runs more locally)
    "test_strnormalizer_export_monday_casesensintive_upper",
    "test_strnormalizer_export_monday_empty_output",
    "test_and2d",
    "test_add_int8",
    "test_add_uint64",
    "test_einsum_sum",
]
BOARD_SAMPLES = 180  # of the 360 test digits: qemu runs the CNN at about 8 samples/s


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """One emulated arm64 board with nothing set up on it."""
    yield from emulated_board(ARCH, tmp_path_factory.mktemp("arm"))


@pytest.fixture(scope="module")
def options(board: Testbed) -> ConnectOptions:
    """The board's connection from the Python API, with an emulated board's patience."""
    return ConnectOptions(
        ssh_config=board.ssh_config,
        targets_file=board.targets,
        timeouts=Timeouts(connect=30, auth=30, command=EMULATED_S),
    )


@pytest.fixture(scope="module")
def setup_json(board: Testbed) -> dict[str, Any]:
    """``edgeship setup BOARD``, as the README writes it: no --python, wheels from PyPI."""
    result: dict[str, Any] = cli_json(board, "setup", board.devices[0].name)
    return result


def test_probe_sees_an_arm64_board_it_does_not_recognise(board: Testbed) -> None:
    seen = cli_json(board, "probe", board.devices[0].name)
    assert seen["arch"] == ARCH and seen["board"] is None
    assert seen["profile"] == "generic-aarch64"
    assert seen["python"]["executable"] == "/usr/bin/python3"
    assert not seen["backends"]["numpy"]["available"]  # a fresh board: nothing installed


def test_setup_makes_a_venv_with_aarch64_wheels_from_pypi(
    board: Testbed, setup_json: dict[str, Any]
) -> None:
    assert setup_json["method"] == "venv-online"
    assert setup_json["profile"] == "generic-aarch64"
    assert setup_json["notes"] == [
        "board not recognised: using generic-aarch64; pass --profile to choose"
    ]
    assert setup_json["python"].endswith("/.edgeship/venv/bin/python")
    assert setup_json["skipped"] == {}
    for module in ("numpy", "onnxruntime", "ai_edge_litert"):
        assert setup_json["backends"][module]["available"], module
    dev = board.devices[0]
    wheels = board.run_as(dev, ["ls", str(dev.deploy_path / "venv/lib/python3.11/site-packages")])
    assert "onnxruntime" in wheels.stdout


def test_deploy_profile_and_rollback_on_the_board(
    board: Testbed, setup_json: dict[str, Any], zoo: Path
) -> None:
    name = board.devices[0].name
    first = cli_json(board, "deploy", str(zoo / "mlp.onnx"), "--target", name, "--name", "digits")
    assert first[0]["uploaded"] and first[0]["version"] == "v0001"
    for model, backend in (("mlp.onnx", "onnxruntime"), ("mlp.tflite", "tflite")):
        (report,) = cli_json(board, "profile", str(zoo / model), "--target", name)
        assert report["backend"]["name"] == backend
        assert report["environment"]["arch"] == ARCH
        latency = report["latency_ms"]  # the default window: >= 100 runs and >= 1 s of them
        assert latency["n"] >= 100 and latency["n"] * latency["mean"] >= 999.0
        assert latency["p50"] > 0
    second = cli_json(board, "deploy", str(zoo / "cnn.onnx"), "--target", name, "--name", "digits")
    assert second[0]["version"] == "v0002" and second[0]["activated"]
    back = cli_json(board, "rollback", "digits", "--target", name)
    assert back["version"] == "v0001" and back["sha256"] == first[0]["sha256"]
    (listed,) = cli_json(board, "ls", name)
    assert listed["active"] == "v0001" and len(listed["versions"]) == 2


def test_a_link_under_the_root_is_refused_on_the_board_and_the_users_files_survive(
    board: Testbed, setup_json: dict[str, Any], zoo: Path
) -> None:
    """The attack table's link row on the board itself: ROOT/blobs pointed at a directory
    of the board user's holding an old file (what housekeeping would collect)."""
    dev = board.devices[0]
    root = "$HOME/" + dev.deploy_root.removeprefix("~/")
    first = cli(board, "deploy", str(zoo / "mlp.tflite"), "--target", dev.name, "--name", "linked",
                "--no-health-check", timeout=EMULATED_S)  # fmt: skip
    assert first.returncode == 0, first.stderr
    plant = (
        f'mkdir -p "$HOME/precious" && echo mine > "$HOME/precious/notes" && '
        f'touch -d "2 hours ago" "$HOME/precious/notes" && '
        f'mv "{root}/blobs" "{root}/blobs.moved" && ln -s "$HOME/precious" "{root}/blobs"'
    )
    board.run_as(dev, ["sh", "-c", plant], check=True)
    try:
        done = cli(board, "deploy", str(zoo / "cnn.tflite"), "--target", dev.name, "--name",
                   "linked", timeout=EMULATED_S)  # fmt: skip
        assert done.returncode != 0
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("error: ") and "is a symbolic link" in line, done.stderr
        kept = board.run_as(dev, ["sh", "-c", 'cat "$HOME/precious/notes"'], check=True)
        assert kept.stdout == "mine\n"
    finally:
        board.run_as(
            dev, ["sh", "-c", f'rm "{root}/blobs" && mv "{root}/blobs.moved" "{root}/blobs"']
        )


def test_an_unchanged_redeploy_starts_no_device_process_but_sftp(
    board: Testbed, options: ConnectOptions, setup_json: dict[str, Any], zoo: Path
) -> None:
    with open_target(board.devices[0].name, options) as target:
        assert isinstance(target, SSHTarget)
        target.deploy(zoo / "mlp.tflite", "unchanged")  # sftp, lock, receiver
        before = target.process_starts
        again = target.deploy(zoo / "mlp.tflite", "unchanged")
        assert not again.uploaded and not again.activated
        assert target.process_starts == before  # the SFTP session was open already
    with open_target(board.devices[0].name, options) as target:
        target.deploy(zoo / "mlp.tflite", "unchanged")
        assert target.process_starts == 1  # a fresh connection: its SFTP session only


def test_onnx_backend_cases_give_the_reference_outputs_on_the_board(
    board: Testbed, options: ConnectOptions, setup_json: dict[str, Any], tmp_path: Path
) -> None:
    with open_target(board.devices[0].name, options) as target:
        tally = run_cases(target, cases(ONNX_CASES), tmp_path)
    assert tally.failed == {} and sorted(tally.passed) == sorted(ONNX_CASES)


def test_ab_on_the_board(board: Testbed, setup_json: dict[str, Any], zoo: Path) -> None:
    report = cli_json(
        board,
        "ab",
        str(zoo / "mlp.onnx"),
        str(zoo / "mlp.tflite"),
        "--target",
        board.devices[0].name,
        "--data",
        str(zoo / "digits_test.npz"),
        "--runs",
        "40",
        "--sessions",
        "6",
        "--min-seconds",
        "0.05",
    )
    (device,) = report["devices"]
    assert [m["name"] for m in device["models"]] == ["mlp.onnx", "mlp.tflite"]
    assert [m["backend"]["name"] for m in device["models"]] == ["onnxruntime", "tflite"]
    assert report["failures"] == [] and report["passed"]


def test_int8_compressed_on_the_host_keeps_its_accuracy_on_the_board(
    board: Testbed, setup_json: dict[str, Any], zoo: Path, tmp_path: Path
) -> None:
    """An INT8 model quantized with the host's (x86) kernels in the loop runs on the board's
    ARM kernels as accurately as on the host and as the base does on the board."""
    base, int8 = zoo / "cnn.onnx", tmp_path / "cnn_int8.onnx"
    compressed = cli_json(
        board, "compress", str(base), "--method", "int8-static", "--out", str(int8),
        "--data", str(zoo / "digits_train.npz"), "--eval-data", str(zoo / "digits_test.npz"),
    )  # fmt: skip
    assert compressed["verified_on"] == "local" and compressed["parameters"]["reduce_range"]
    images, labels = (a[:BOARD_SAMPLES] for a in load_split(zoo / "digits_test.npz"))
    data = tmp_path / "digits.npz"
    np.savez(data, input=images, labels=labels)
    report = cli_json(
        board, "ab", str(base), str(int8), "--target", board.devices[0].name, "--data", str(data),
        "--runs", "20", "--sessions", "6", "--block", "5", "--warmup", "1", "--no-memory",
        "--min-seconds", "0.01",
    )  # fmt: skip
    assert report["failures"] == []
    (device,) = report["devices"]
    assert device["environment"]["arch"] == ARCH
    on_board = {m["role"]: m for m in device["models"]}
    assert {m["backend"]["name"] for m in on_board.values()} == {"onnxruntime"}
    assert {m["accuracy"]["n"] for m in on_board.values()} == {BOARD_SAMPLES}
    board_base = on_board["base"]["accuracy"]["accuracy"]
    board_int8 = on_board["variant"]["accuracy"]["accuracy"]
    assert abs(board_int8 - board_base) <= 0.02, (board_base, board_int8)
    (comparison,) = device["comparisons"]
    assert comparison["agreement"]["top1"] >= 0.97, comparison["agreement"]
    host_int8 = float(np.mean(np.argmax(onnx_logits(int8, images), axis=1) == labels))
    assert abs(board_int8 - host_int8) <= 0.02, (host_int8, board_int8)


def test_setup_from_a_wheelhouse_for_a_board_without_internet(
    board: Testbed, setup_json: dict[str, Any], zoo: Path
) -> None:
    """The host downloads aarch64 wheels for the board's Python and glibc and pushes them;
    pip on the board installs with --no-index (its proxy is never asked)."""
    name, root = board.devices[0].name, "~/.edgeship-offline"
    result = cli_json(board, "setup", name, "--wheelhouse", "--deploy-root", root)
    assert result["method"] == "venv-wheelhouse" and result["skipped"] == {}
    assert result["python"].endswith("/.edgeship-offline/venv/bin/python")
    assert result["backends"]["onnxruntime"]["available"]
    (report,) = cli_json(
        board, "profile", str(zoo / "mlp.onnx"), "--target", name, "--deploy-root", root
    )
    assert report["environment"]["arch"] == ARCH
    proxy_log = board.device_dir(board.devices[0]) / "proxy.log"
    assert not proxy_log.exists() or "CONNECT" not in proxy_log.read_text()
