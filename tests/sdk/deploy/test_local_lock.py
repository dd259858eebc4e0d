"""The ``local`` target's deploy lock: a holder stopped for ``--unresponsive`` s is taken over."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeship.core.errors import DeployError
from edgeship.deploy.local_files import LocalFiles

# Another edgeship process that takes the lock and holds it until it is ended.
HOLDER = """
import sys, time
from edgeship.deploy.local_files import LocalFiles
with LocalFiles().lock(sys.argv[1], 5.0, "the root"):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    path = os.pathsep.join(sys.path)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "lock")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert process.stdout is not None and process.stdout.readline() == b"locked\n"
    yield process
    process.kill()
    process.wait()
    process.stdout.close()


def test_a_stopped_holder_is_taken_over_within_the_unresponsive_time(
    holder: subprocess.Popen[bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.kill(holder.pid, signal.SIGSTOP)
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, "edgeship"),
        LocalFiles(unresponsive=1.0).lock(str(tmp_path / "lock"), 30.0, "the root"),
    ):
        took = time.monotonic() - started
    assert took < 1 + 3, took
    assert holder.wait(timeout=5) == -signal.SIGTERM
    assert f"its holder (process {holder.pid}) was stopped for over 1 s" in caplog.text


def test_a_running_holder_is_waited_for(holder: subprocess.Popen[bytes], tmp_path: Path) -> None:
    lock = LocalFiles(unresponsive=0.5).lock(str(tmp_path / "lock"), 1.5, "the root")
    with pytest.raises(DeployError, match="another deploy holds it"), lock:
        pass
    assert holder.poll() is None
