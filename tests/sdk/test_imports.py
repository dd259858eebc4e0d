"""paramiko (a tenth of a second to import) loads only when an SSH target is opened:
``import edgeship``, the CLI and ``local`` work never pay for it; a deploy loads no numpy
and none of the code that measures. Each check runs in a fresh interpreter, as this one
has long imported everything."""

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


# A deploy connects and moves files: what loads and measures models is not its business,
# nor psutil, which only a busy lock asks.
MEASURING = {
    "numpy",
    "psutil",
    "edgeship.targets.wire",
    "edgeship.targets.loaded",
    "edgeship.targets.health",
    "edgeship_runtime.frames",
    "edgeship_runtime.guards",
    "edgeship_runtime.inputs",
    "edgeship_runtime.measure",
    "edgeship_runtime.model",
    "edgeship_runtime.opprofile",
    "edgeship_runtime.report",
    "edgeship_runtime.stats",
}

# `edgeship deploy` twice to `local` (the second finds the model unchanged, as a re-deploy
# over SSH does), a second version, `ls`, `rollback` and `rm`, then what an SSH target
# adds: its class, its files over SFTP. Each command's exit status, then the modules.
DEPLOY = """
import contextlib, io, sys
import edgeship.cli.main
model, other, root = sys.argv[1:]
where = ["--target", "local", "--deploy-root", root, "--json"]
commands = [
    ["deploy", model, "--name", "m", "--no-health-check", *where],
    ["deploy", model, "--name", "m", *where],
    ["deploy", other, "--name", "m", "--no-health-check", *where],
    ["ls", *where],
    ["rollback", "m", *where],
    ["rm", "m", *where],
]
with contextlib.redirect_stdout(io.StringIO()) as out:
    done = [edgeship.cli.main.main(argv) for argv in commands]
from edgeship.core.config import ConnectOptions
from edgeship.targets import open_target
import edgeship.deploy.sftp_files
open_target("user@127.0.0.1:1", ConnectOptions())
unchanged = out.getvalue().count('"activated": false')
print("".join(map(str, done)), unchanged, *sys.modules)
"""


def test_deploy_ls_rollback_rm_load_no_numpy_nor_the_measuring_code(
    home: Path, add_onnx: Path, multi_input_onnx: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    done, unchanged, *modules = _python(DEPLOY, home, add_onnx, multi_input_onnx, root)
    assert done == "000000" and unchanged == "1"
    assert {"edgeship.deploy.store", "edgeship.targets.ssh", "paramiko"} <= set(modules)
    assert not MEASURING & {*modules, *(m.partition(".")[0] for m in modules)}
