"""On a Python older than 3.9 the runtime says so in one line instead of a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeship.targets.bundle import ensure_bundle

RUNTIME_ROOT = Path(__file__).resolve().parents[2] / "runtime"
OLD_PYTHONS = [f"/root/.pyenv/versions/{v}/bin/python" for v in ("3.6.15", "3.7.16", "3.8.18")] + [
    "python3.8",
    "python3.7",
    "python3.6",
]


def test_an_old_python_is_told_to_use_a_newer_one() -> None:
    """Importing the runtime on "3.8" (sys.version_info set so) exits with the reason."""
    code = "import sys; sys.version_info = (3, 8, 10, 'final', 0); import edgeship_runtime"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(RUNTIME_ROOT)},
    )
    assert done.returncode == 1
    assert done.stderr.startswith("edgeship runtime: needs Python 3.9 or newer, this is Python")
    assert "Traceback" not in done.stderr


def test_the_zipapp_on_a_real_old_python_says_it_is_too_old() -> None:
    found = [p for p in (shutil.which(c) for c in OLD_PYTHONS) if p]
    if not found:
        pytest.skip(f"no Python older than 3.9 here (looked for {', '.join(OLD_PYTHONS)})")
    pyz = str(ensure_bundle())
    for python in found[:3]:
        done = subprocess.run([python, pyz, "info"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, (python, done.stderr)
        assert done.stderr.startswith("edgeship runtime: needs Python 3.9 or newer"), done.stderr
        assert "Traceback" not in done.stderr
