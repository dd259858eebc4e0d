"""End-to-end wiring: one real SSH testbed of 4 devices per test session.

Every test in this directory is marked ``e2e``. The testbed needs root,
iproute2 and openssh-server; without them the tests skip on a developer
machine but *fail* in CI (``CI`` set), since CI installs them and a skip
there would hide a broken setup. So do the emulated boards of
:func:`emulated_board` (test_arm.py, test_armv7.py), which also need their
cached Debian root and qemu-user.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeship.core.config import ConnectOptions, Timeouts
from edgeship.targets import SSHTarget, open_target
from tools.testbed import Testbed, missing_requirements, rootfs

E2E_DIR = Path(__file__).resolve().parent
DEVICES = 4
EMULATED_S = 600.0  # seconds for one command on an emulated board (setup pip-installs there)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end tests through the real SSH testbed")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests under this directory (this hook sees the whole session)."""
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """Four running devices; their files are in ``testbed.workdir``.

    The prefix gets a random suffix so parallel sessions on one machine (and a
    developer's ``python -m tools.testbed up`` testbed) do not clash.
    """
    missing = missing_requirements()
    if missing:
        reason = "SSH testbed unavailable: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    prefix = "es" + secrets.token_hex(2)
    with Testbed(DEVICES, tmp_path_factory.mktemp("testbed"), prefix=prefix) as bed:
        yield bed


@pytest.fixture
def clean_testbed(testbed: Testbed) -> Iterator[Testbed]:
    """The session testbed, with every injected fault undone after the test."""
    yield testbed
    testbed.reset_faults()


@pytest.fixture(scope="session")
def zoo() -> Path:
    """The demo zoo (trained here from scikit-learn's digits), built once and cached."""
    from tools.zoo.build import build_zoo

    return build_zoo().root


@pytest.fixture(scope="session")
def connect(testbed: Testbed) -> ConnectOptions:
    """How edgeship reaches the testbed: its ssh_config, known_hosts and targets file."""
    return ConnectOptions(
        ssh_config=testbed.ssh_config,
        targets_file=testbed.targets,
        timeouts=Timeouts(connect=5, auth=5, command=60),
    )


@pytest.fixture
def device_target(clean_testbed: Testbed, connect: ConnectOptions) -> Iterator[SSHTarget]:
    """An SSH target for the first device, closed after the test."""
    target = open_target(clean_testbed.devices[0].name, connect)
    assert isinstance(target, SSHTarget)
    with target:
        yield target


def cli(testbed: Testbed, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real ``edgeship`` command, pointed at the testbed's files."""
    argv = [
        sys.executable,
        "-m",
        "edgeship.cli.main",
        *args,
        "--ssh-config",
        str(testbed.ssh_config),
        "--targets",
        str(testbed.targets),
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def cli_json(testbed: Testbed, *args: str, timeout: float = EMULATED_S) -> Any:
    """``edgeship ... --json`` that must succeed: its parsed output."""
    done = cli(testbed, *args, "--json", timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def emulated_board(arch: str, workdir: Path) -> Iterator[Testbed]:
    """One emulated ``arch`` board with nothing set up on it, for a module fixture.

    Skips where the machine cannot run one, or has not built its root (minutes); in CI,
    which builds it, either is a failure.
    """
    missing = missing_requirements(need_python=False) + rootfs.missing_requirements(arch)
    if missing:
        reason = f"emulated {arch} board unavailable: " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    if not rootfs.is_cached(arch) and not os.environ.get("CI"):
        pytest.skip(
            f"no cached {arch} root at {rootfs.cached_root(arch)}: building it takes minutes; "
            f"run `python -m tools.testbed rootfs {arch}` (CI builds it)"
        )
    prefix = "ea" + secrets.token_hex(2)
    with Testbed(1, workdir, prefix=prefix, arch=arch) as bed:
        yield bed
