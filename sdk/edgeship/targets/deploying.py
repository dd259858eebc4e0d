"""A target that keeps deployments: signed, health-checked, in a :class:`DeployStore`.

What a deploy does is the same on every kind; a kind says only where its store's files
are (:meth:`DeployingTarget.store`: over SSH, or on this machine) and how it hashes the
model it sends (:meth:`DeployingTarget.model_files`).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core.config import DEFAULT_HEALTH, HealthPolicy, Signing
from edgeship.targets.base import Target

if TYPE_CHECKING:
    from edgeship.deploy import Deployment, DeployStore
    from edgeship.deploy.files import ModelFiles
    from edgeship.deploy.health import HealthReport

__all__ = ["DeployingTarget"]


class DeployingTarget(Target):
    """A :class:`Target` whose kind declares ``deploy`` (see :mod:`.capabilities`)."""

    @abc.abstractmethod
    def store(self) -> DeployStore:
        """The deployments on this target, made on first use."""

    def model_files(self, path: Path) -> ModelFiles:
        """``path`` and its companion files, hashed."""
        from edgeship.deploy.files import model_files

        return model_files(path)

    def deploy(
        self,
        path: Path,
        name: str | None = None,
        health: HealthPolicy | None = DEFAULT_HEALTH,
        signing: Signing | None = None,
    ) -> Deployment:
        """Upload and activate ``path`` as the next version of ``name``; with ``health``
        (the default; None: skip), only once it loaded and ran on the device (see
        :mod:`edgeship.deploy.health`); ``signing``: signed with that key, which a device
        that trusts a key checks (see :mod:`edgeship.deploy.signing`)."""
        # here, not at the top: `import edgeship` (which opens `local`) loads no deploy code
        from edgeship.deploy.layout import validate_name
        from edgeship.deploy.signing import admit, release_for

        name = validate_name(name or path.stem)
        files = self.model_files(path)
        store = self.store()
        release = release_for(signing, name, files) if signing else None
        allow = bool(signing and signing.allow_downgrade)

        def admitted(blob: str) -> dict[str, Any]:
            return admit(store, name, blob, release, allow)

        if health is None:
            return store.deploy(files, name, admit=admitted)
        digests = (files.sha256, {c.name: c.sha256 for c in files.companions})
        policy = health

        def check(device_path: str) -> HealthReport:
            # here: it loads numpy and the measuring code, which an unchanged model skips
            from edgeship.targets.health import health_check

            return health_check(self, device_path, digests, policy)

        return store.deploy(files, name, check=check, admit=admitted)
