"""The programs the host sends to the device as text parse: a typo there surfaces only on
a board without util-linux flock, or mid-upload, as a device-side SyntaxError."""

from __future__ import annotations

import ast
import shutil
import subprocess

import pytest

from edgeship.deploy import lock, orphans, signing, upload

PYTHON = {
    "lock.LOCK_SCRIPT": lock.LOCK_SCRIPT,
    "upload.RECEIVE_SCRIPT": upload.RECEIVE_SCRIPT,
    "signing.VERIFY_SCRIPT": signing.VERIFY_SCRIPT,
}
SHELL = {
    "lock.HOLDER": lock.HOLDER,
    "orphans.END_SESSION": orphans.END_SESSION,
    "orphans.SESSION_OF_SHELL": orphans.SESSION_OF_SHELL,
}


@pytest.mark.parametrize("name", sorted(PYTHON))
def test_python_scripts_parse(name: str) -> None:
    ast.parse(PYTHON[name], filename=name)


@pytest.mark.parametrize("name", sorted(SHELL))
def test_shell_scripts_parse(name: str) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    done = subprocess.run([sh, "-n", "-c", SHELL[name]], capture_output=True, text=True)
    assert done.returncode == 0, f"{name}: {done.stderr}"
