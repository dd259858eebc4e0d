"""An SSH target: the runtime zipapp on a board, driven over one paramiko connection.

Nothing is installed on the device but the zipapp under the deploy root; the runtime is
started per session with ``exec PYTHON ROOT/runtime/edgeship-runtime-<digest>.pyz serve``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from edgeship.core.config import Timeouts
from edgeship.core.errors import ProtocolError
from edgeship.core.progress import Progress
from edgeship.deploy import DeployStore
from edgeship.deploy.device_files import PRIVATE_FILE
from edgeship.deploy.files import ModelFiles, model_files
from edgeship.deploy.sftp_files import SftpFiles
from edgeship.ssh.connection import CommandResult, Connection
from edgeship.ssh.hostconfig import HostSpec
from edgeship.ssh.pipe import SSHPipe
from edgeship.targets.bundle import ensure_bundle, runtime_digest
from edgeship.targets.capabilities import DEPLOY, PROBE, SETUP
from edgeship.targets.deploying import DeployingTarget
from edgeship_runtime.formats import companion_files

if TYPE_CHECKING:  # imported where used: a deploy reads no board profile, settings or probe
    from edgeship.targets.profiles import BoardProfile
    from edgeship.targets.settings import SettingsStore

__all__ = ["DEVICE_CONFIG", "SSHTarget"]

DEVICE_CONFIG = "config.json"


class SSHTarget(DeployingTarget):
    kind = "ssh"
    capabilities = frozenset({DEPLOY, PROBE, SETUP})

    def __init__(
        self,
        name: str,
        host: HostSpec,
        *,
        python: str | None = None,
        deploy_root: str = "~/.edgeship",
        timeouts: Timeouts | None = None,
        accept_new_host_keys: bool = False,
        ssh_config: paramiko.SSHConfig | None = None,
        keep_versions: int = 3,
        lock_wait: float = 60.0,
        progress: Progress | None = None,
        labels: tuple[str, ...] = (),
        board: str | None = None,
    ) -> None:
        super().__init__(name, timeouts)
        self.host = host
        self.connection = Connection(host, self.timeouts, accept_new_host_keys, ssh_config)
        self.deploy_root = deploy_root
        self.labels = labels
        self.board_name = board
        """The board profile named for this device (targets file), else detected."""
        self._python = python
        self._keep = keep_versions
        self._lock_wait = lock_wait
        self._progress = progress
        self._store: DeployStore | None = None
        self._digests: dict[str, tuple[str, dict[str, str]]] = {}
        self._device_config: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "host": self.host.label,
            "labels": list(self.labels),
        }

    @property
    def process_starts(self) -> int:
        """Processes this target has started on the device (exec channels and SFTP
        sessions): on a slow board each one costs, a Python start most of all."""
        return self.connection.process_starts

    def store(self) -> DeployStore:
        if self._store is None:
            device = SftpFiles(self.connection)
            self._store = DeployStore(
                device, self.deploy_root, self._keep, self._progress, self._lock_wait, self.python
            )
        return self._store

    def device_config(self) -> dict[str, Any]:
        """What ``edgeship setup`` recorded on the device (python, board profile), or {}."""
        if self._device_config is None:
            store = self.store()
            self._device_config = store.read_json(posixpath.join(store.root, DEVICE_CONFIG))
        return self._device_config

    def python(self) -> str:
        """The device Python: explicit, else what ``setup`` recorded, else ``python3``."""
        if not self._python:
            self._python = str(self.device_config().get("python") or "python3")
        return self._python

    def board_profile(self) -> BoardProfile | None:
        """The targets file's ``profile``, else the one ``setup`` detected."""
        from edgeship.targets.profiles import get_profile

        name = self.board_name or self.device_config().get("profile")
        return get_profile(str(name)) if name else None

    def settings_store(self) -> SettingsStore:
        from edgeship.targets.settings import RemoteSettingsStore

        return RemoteSettingsStore(self.store())

    def use_python(self, python: str) -> None:
        """Run the runtime with ``python`` from now on (``setup`` found or made it)."""
        self._python = python

    def run_command(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run a command on the device (quoted, bounded by ``timeout`` seconds); what it
        creates is private to the device user."""
        return self.connection.run(list(argv), timeout=timeout, private=True)

    def put_file(self, local: Path, remote: str) -> None:
        sftp = self.connection.sftp()
        sftp.put(str(local), remote)
        sftp.chmod(remote, PRIVATE_FILE)

    def install_runtime(self) -> str:
        return self.store().put_runtime(ensure_bundle(), runtime_digest())

    def start_pipe(self) -> SSHPipe:
        argv = [self.python(), self.install_runtime(), "serve"]
        return self.connection.start(argv, report_exit=True)

    def stage_model(self, path: Path) -> str:
        files = self.model_files(path)  # first: store() would connect before it
        model, _, _ = self.store().put_blob(files)
        self._digests[model] = (files.sha256, {c.name: c.sha256 for c in files.companions})
        return model

    def staged_digests(self, device_path: str) -> tuple[str, dict[str, str]] | None:
        return self._digests.get(device_path)

    def model_files(self, path: Path) -> ModelFiles:
        """``path`` and its companion files, hashed while the SSH handshake runs: for a
        large model both take about the same time, and neither needs the other."""
        # a missing, empty or unknown file, or a missing or unsafe companion, is a clear
        # error before any connection, not a traceback after one
        companion_files(str(path))
        with ThreadPoolExecutor(max_workers=1) as pool:
            files = pool.submit(model_files, path)
            self.store()
            return files.result()

    def probe(self, python: str | None = None) -> dict[str, Any]:
        """Run the stdlib-only probe with the device's Python; nothing is written there.
        It tries the backend catalog's modules."""
        from edgeship_runtime import probe as probe_module
        from edgeship_runtime.backends.catalog import probe_modules

        source = Path(probe_module.__file__).read_text()
        modules = json.dumps(probe_modules())
        argv = [python or self.python(), "-c", source, "--root", self.deploy_root]
        argv += ["--modules", modules]
        out = self.connection.run(argv, timeout=self.timeouts.command).stdout
        try:
            seen: dict[str, Any] = json.loads(out.decode())
        except ValueError:
            raise ProtocolError(f"{self.name}: the probe printed no JSON: {out[:200]!r}") from None
        return seen

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.connection.close()
            self._store = None
