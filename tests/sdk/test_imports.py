"""paramiko (a tenth of a second to import) loads only when an SSH target is opened:
``import edgeship``, the CLI and ``local`` work never pay for it. Each check runs in a
fresh interpreter, as this one has long imported everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# A device and a group in the targets file: resolving `local` reads it, and must not
# reach for the SSH machinery because it names remote hosts.
TARGETS = """
[devices.pi]
host = "user@127.0.0.1:1"

[groups]
lab = ["pi"]
"""

LOCAL = """
import contextlib, io, sys
import edgeship, edgeship.cli.main
edgeship.cli.main.build_parser()
with contextlib.redirect_stdout(io.StringIO()):
    rc = edgeship.cli.main.main([
        "profile", sys.argv[1], "--runs", "3", "--warmup", "1", "--min-seconds", "0"
    ])
edgeship.profile(sys.argv[1], runs=3, warmup=1, min_seconds=0)
print(rc, "paramiko" in sys.modules)
"""

# Port 1 refuses connections: constructing the target must not try it.
REMOTE = """
import sys
from edgeship.core.config import ConnectOptions
from edgeship.targets import open_target
target = open_target(sys.argv[1], ConnectOptions())
print(target.kind, target.connection._client is None, "paramiko" in sys.modules)
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME and working directory holding the targets file above."""
    (tmp_path / "edgeship.toml").write_text(TARGETS)
    return tmp_path


def _python(code: str, home: Path, *args: str | Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=home,
        env={**os.environ, "HOME": str(home)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_local_work_does_not_import_paramiko(home: Path, add_onnx: Path) -> None:
    assert _python(LOCAL, home, add_onnx) == ["0", "False"]


@pytest.mark.parametrize("spec", ["user@127.0.0.1:1", "pi", "lab"])
def test_an_ssh_target_imports_it_without_connecting(home: Path, spec: str) -> None:
    assert _python(REMOTE, home, spec) == ["ssh", "True", "True"]


def test_ssh_target_is_still_importable_from_the_package() -> None:
    from edgeship.targets import SSHTarget
    from edgeship.targets.ssh import SSHTarget as Defined

    assert SSHTarget is Defined


HELP = """
import contextlib, io, sys
import edgeship.cli.main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    edgeship.cli.main.main(sys.argv[1:])
print(*{m.partition(".")[0] for m in sys.modules})
"""

HEAVY = {"numpy", "onnx", "onnxruntime", "paramiko", "torch", "matplotlib", "scipy", "ray"}


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_imports_no_heavy_library(home: Path, args: list[str]) -> None:
    """`edgeship --help` lists the commands without importing them, nor what they use."""
    assert not HEAVY & set(_python(HELP, home, *args))
