"""``local``: the runtime zipapp in a subprocess of this machine (the embedded default).

It keeps deployments too, as an SSH target does, under a deploy root on this machine
(default ``~/.edgeship``, the SSH targets' default, here): the same store over
:class:`~edgeship.deploy.local_files.LocalFiles`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core import procs
from edgeship.core.client import Pipe
from edgeship.core.config import Timeouts
from edgeship.core.errors import ModelError, TargetError
from edgeship.core.progress import Progress
from edgeship.targets.bundle import ensure_bundle
from edgeship.targets.capabilities import DEPLOY
from edgeship.targets.deploying import DeployingTarget
from edgeship.targets.devices import DEFAULT_DEPLOY_ROOT
from edgeship_runtime.formats import companion_files

if TYPE_CHECKING:
    from edgeship.deploy import DeployStore

__all__ = ["LocalPipe", "LocalTarget"]


class LocalPipe(Pipe):
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin and process.stdout and process.stderr
        super().__init__(process.stdin, process.stdout, process.stderr)
        self.process = process

    def write(self, data: bytes) -> None:
        try:
            super().write(data)
        except ValueError:  # our end is closed because the process ended
            raise BrokenPipeError("the runtime's stdin is closed") from None

    def exit_status(self, timeout: float) -> int | None:
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._release()
        return status

    def frozen(self) -> bool:
        return self.process.poll() is None and bool(procs.stopped(self.process.pid))

    def kill(self) -> None:
        """Kill the runtime's whole process group (it may have started workers)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.process.wait()
        self._release()

    def _release(self) -> None:
        """Once the process has ended, drain and close our ends of its pipes."""
        self.close()
        for reader in self._readers:
            reader.join(timeout=1.0)  # the last lines of a dead process still arrive
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class LocalTarget(DeployingTarget):
    """The runtime as a child process, speaking the same protocol an SSH target uses."""

    kind = "local"
    capabilities = frozenset({DEPLOY})

    def __init__(
        self,
        python: str | None = None,
        timeouts: Timeouts | None = None,
        *,
        deploy_root: str = DEFAULT_DEPLOY_ROOT,
        keep_versions: int = 3,
        lock_wait: float = 60.0,
        progress: Progress | None = None,
    ) -> None:
        super().__init__("local", timeouts)
        self.python = python or sys.executable
        self.deploy_root = deploy_root
        self._keep = keep_versions
        self._lock_wait = lock_wait
        self._progress = progress
        self._store: DeployStore | None = None

    def store(self) -> DeployStore:
        if self._store is None:
            # here, not at the top: the store loads paramiko (its upload's errors), which
            # `local` work that deploys nothing should not pay for
            from edgeship.deploy import DeployStore
            from edgeship.deploy.local_files import LocalFiles

            files = LocalFiles(self.name, self.timeouts.command, self.timeouts.unresponsive)
            self._store = DeployStore(
                files,
                self.deploy_root,
                self._keep,
                self._progress,
                self._lock_wait,
                lambda: self.python,
            )
        return self._store

    def start_pipe(self) -> LocalPipe:
        argv = [self.python, str(ensure_bundle()), "serve"]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killable as a whole
            )
        except OSError as exc:  # no such interpreter, not executable, ...
            raise TargetError(
                f"{self.name}: cannot start the runtime with {self.python}: {exc.strerror}",
                target=self.name,
                python=self.python,
            ) from exc
        return LocalPipe(process)

    def stage_model(self, path: Path) -> str:
        if not path.is_file():
            raise ModelError(f"{path}: no such model file", path=str(path))
        resolved = path.resolve()
        # the runtime reads companions (external data) beside the file it opens: check
        # there, so a missing or escaping one is a clear error before the runtime starts
        companion_files(str(resolved))
        return str(resolved)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "python": self.python}
