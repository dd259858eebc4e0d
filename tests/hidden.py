"""edgeship's command line in a fresh interpreter with some packages hidden, as on a machine
that lacks them: ``sys.modules[name] = None`` makes the import machinery refuse a package
as it refuses an absent one, and a fresh interpreter has imported nothing heavy before."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["REPO_ROOT", "run_cli"]

REPO_ROOT = Path(__file__).resolve().parents[1]

_CLI = """
import sys
for name in filter(None, sys.argv[1].split(",")):
    sys.modules[name] = None
from edgeship.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def run_cli(
    hidden: Iterable[str], *args: str | Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``edgeship ARGS`` with the top-level packages ``hidden`` unimportable."""
    return subprocess.run(
        [sys.executable, "-c", _CLI, ",".join(hidden), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(_path())},
        timeout=timeout,
        check=False,
    )


def _path() -> list[str]:
    """The repository first (its edgeship, as the tests import it), then what was there."""
    return [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
