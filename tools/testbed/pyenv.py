"""The shared "device Python": one venv every testbed user can execute.

Real boards run a system Python, not the developer's. The venv is therefore
built from Debian's ``/usr/bin/python3`` (the pyenv interpreter under /root
is unreadable to other users, /root being mode 700) in /opt, made
world-readable, and reused across runs while a stamp file matches the
requirement list. A file lock makes concurrent callers (parallel pytest
sessions, CLI + tests) build it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ._proc import TestbedError, run

DEVICE_PYTHON_ROOT = Path("/opt/edgeship-testbed")
DEVICE_VENV = DEVICE_PYTHON_ROOT / "venv"
DEVICE_PYTHON = DEVICE_VENV / "bin" / "python"
BASE_PYTHON = Path("/usr/bin/python3")
REQUIREMENTS: tuple[str, ...] = ("numpy", "psutil", "onnxruntime", "ai-edge-litert")
INSTALL_TIMEOUT = 1800.0


def _stamp(requirements: Sequence[str], base: Path) -> str:
    """What the venv was built from; any change triggers a rebuild."""
    version = run([str(base), "-c", "import sys; print(sys.version)"]).stdout.strip()
    return json.dumps(
        {"base": str(base), "version": version, "requirements": sorted(requirements)},
        sort_keys=True,
    )


def ensure_device_python(
    requirements: Sequence[str] = REQUIREMENTS, venv: Path = DEVICE_VENV, base: Path = BASE_PYTHON
) -> Path:
    """Return the interpreter of ``venv`` (made from ``base`` with ``requirements``: pip
    arguments), building it first if needed."""
    if not os.access(base, os.X_OK):
        raise TestbedError(f"{base} missing: apt-get install -y python3 python3-venv")
    venv.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    python = venv / "bin" / "python"
    stamp_file = venv.parent / f".{venv.name}.stamp"
    wanted = _stamp(requirements, base)
    with (venv.parent / f".{venv.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _is_current(stamp_file, wanted, python):
                return python
            _build(venv, requirements, base)
            stamp_file.write_text(wanted)
            stamp_file.chmod(0o644)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return python


def _is_current(stamp_file: Path, wanted: str, python: Path) -> bool:
    """True when the stamp matches and the interpreter is still there."""
    try:
        return stamp_file.read_text() == wanted and os.access(python, os.X_OK)
    except OSError:
        return False


def _build(venv: Path, requirements: Sequence[str], base: Path) -> None:
    """(Re)create the venv, install requirements, open permissions to all."""
    if venv.exists():
        shutil.rmtree(venv)
    # umask per command, not os.umask(): other threads are creating key files.
    umask = ["sh", "-c", 'umask 022 && exec "$@"', "sh"]
    try:
        run([*umask, str(base), "-m", "venv", str(venv)], timeout=300)
        pip = [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--no-input",
            "install",
            "--root-user-action=ignore",
        ]
        run([*umask, *pip, *requirements], timeout=INSTALL_TIMEOUT)
    except TestbedError as exc:
        shutil.rmtree(venv, ignore_errors=True)
        raise TestbedError(f"building the Python at {venv} failed: {exc}") from exc
    run(["chmod", "-R", "a+rX", str(venv)], timeout=300)
    venv.parent.chmod(0o755)
