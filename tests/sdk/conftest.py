"""Fixtures shared by the host SDK's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edgeship.cli.main import main

Run = Callable[..., tuple[int, str, str]]
"""The CLI in this process: (exit status, stdout, stderr) of ``edgeship ARGS``."""


@pytest.fixture
def edgeship(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str | Path) -> tuple[int, str, str]:
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture(scope="session")
def zoo() -> Path:
    """The demo zoo (trained from scikit-learn's digits), built once and cached."""
    from tools.zoo.build import build_zoo

    return build_zoo().root
