"""Fixtures for conversion, optimization and partitioning tests: the real zoo, one local
target for the session, and the CLI in-process.

The zoo is built once into ``<repo>/.zoo`` (cached there by its build key) by
``tools.zoo.build.build_zoo``; ``tests/sdk/optimize`` and ``tests/sdk/partition`` import
these fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgeship.cli import main
from edgeship.targets import LocalTarget
from tools.zoo import build as zoo_build


@pytest.fixture(scope="session")
def zoo() -> zoo_build.Manifest:
    return zoo_build.build_zoo()


@pytest.fixture(scope="session")
def digits(zoo: zoo_build.Manifest) -> Path:
    return zoo.path("digits_test.npz")


@pytest.fixture(scope="session")
def local() -> Iterator[LocalTarget]:
    with LocalTarget() as target:
        yield target


@pytest.fixture
def cli() -> Callable[..., int]:
    """``edgeship`` run in-process; returns its exit status."""

    def run(*argv: str | Path) -> int:
        return main.main([str(a) for a in argv])

    return run
