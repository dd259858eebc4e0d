"""A toy kind of target, whole in this one module: the proof that a new kind (adb, serial)
needs nothing but a module of its own.

Its "device" is a directory: models are copied there (as a board would receive them) and
the runtime runs in a subprocess whose working directory it is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from edgeship.targets.bundle import ensure_bundle
from edgeship.core.errors import ModelError
from edgeship.targets.devices import DeviceEntry
from edgeship.targets import Target, register_target_kind
from edgeship.targets.kinds import OpenContext
from edgeship.targets.local import LocalPipe


class DirectoryTarget(Target):
    kind = "toy"

    def __init__(self, name: str, root: Path) -> None:
        super().__init__(name)
        self.root = root
        self.staged: list[str] = []

    def start_pipe(self) -> LocalPipe:
        process = subprocess.Popen(
            [sys.executable, str(ensure_bundle()), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.root,
            start_new_session=True,
        )
        return LocalPipe(process)

    def stage_model(self, path: Path) -> str:
        if not path.is_file():
            raise ModelError(f"{path}: no such model file", path=str(path))
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.root / path.name)
        self.staged.append(path.name)
        return str(self.root / path.name)


def _open(entry: DeviceEntry, context: OpenContext) -> Target:
    return DirectoryTarget(entry.name, Path(entry.host))


def register() -> None:
    register_target_kind("toy", _open)
