"""What the machine needs before a testbed can come up.

Kept separate so test suites can decide to skip (developer laptop, not root)
or fail (CI) with a precise reason instead of a stack trace from deep inside
``up()``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ._proc import TestbedError

SSHD = Path("/usr/sbin/sshd")
BASE_PYTHON = Path("/usr/bin/python3")
TOOLS = (
    "ip",
    "nsenter",
    "ssh-keygen",
    "useradd",
    "userdel",
    "mount",
    "umount",
    "setpriv",
    "taskset",
)


def missing_requirements(*, need_python: bool = True) -> list[str]:
    """Human-readable list of what is missing; empty when the testbed can run."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, useradd, mount)")
    if not os.access(SSHD, os.X_OK):
        problems.append(f"{SSHD} missing: apt-get install -y openssh-server")
    problems.extend(f"{tool!r} not on PATH" for tool in TOOLS if shutil.which(tool) is None)
    if need_python and not os.access(BASE_PYTHON, os.X_OK):
        problems.append(f"{BASE_PYTHON} missing: apt-get install -y python3 python3-venv")
    return problems


def ensure_ready(*, need_python: bool = True) -> None:
    """Raise TestbedError naming every missing requirement."""
    problems = missing_requirements(need_python=need_python)
    if problems:
        raise TestbedError("testbed cannot run: " + "; ".join(problems))
