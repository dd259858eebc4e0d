"""What a kind of target can do beyond running models, declared by the kind itself.

Every target loads, runs, profiles and interleaves models (:class:`~.base.Target`). Some
also keep deployments (``deploy``), describe the device without the runtime (``probe``)
or install what the runtime needs (``setup``). A kind lists those in its
``capabilities``; commands ask for one with :func:`deployer`, :func:`prober` or
:func:`provisioner` and get the target typed for it, or a one-line error naming the
target and its kind. A new kind (adb, serial) declares what it supports in its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from edgeship.core.errors import UsageError
from edgeship.targets.base import Target

if TYPE_CHECKING:
    from edgeship.core.config import HealthPolicy, Signing
    from edgeship.deploy import Deployment, DeployStore
    from edgeship.ssh.connection import CommandResult

__all__ = [
    "DEPLOY",
    "PROBE",
    "SETUP",
    "Deploys",
    "Probes",
    "Provisions",
    "deployer",
    "prober",
    "provisioner",
    "require",
]

DEPLOY = "deploy"
PROBE = "probe"
SETUP = "setup"


class Deploys(Protocol):
    """Versioned, verified, atomically activated models on the device."""

    name: str

    def deploy(
        self,
        path: Path,
        name: str | None = None,
        health: HealthPolicy | None = ...,
        signing: Signing | None = None,
    ) -> Deployment:
        """``health``: check the new version on the device before activating it (see
        :mod:`edgeship.deploy.health`; None: do not); ``signing``: sign it (see
        :mod:`edgeship.deploy.signing`)."""

    def store(self) -> DeployStore: ...


class Probes(Protocol):
    """What the device has (arch, OS, Python, backends, GPU), read without the runtime."""

    name: str

    def identity(self) -> dict[str, Any]: ...

    def probe(self, python: str | None = None) -> dict[str, Any]: ...


class Provisions(Probes, Protocol):
    """Installs the runtime and its backends (``edgeship setup``)."""

    board_name: str | None

    def store(self) -> DeployStore: ...

    def install_runtime(self) -> str: ...

    def run_command(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run ``argv`` on the device; what it creates is the device user's alone."""

    def put_file(self, local: Path, remote: str) -> None:
        """Copy ``local`` to ``remote`` on the device, private to the device user."""

    def use_python(self, python: str) -> None: ...


_HINTS = {
    DEPLOY: "deployments live on devices (SSH targets)",
    PROBE: "probe reads a device over SSH; use `edgeship info` here",
    SETUP: "setup installs on a device over SSH; `local` runs with this Python",
}


def require(target: Target, capability: str) -> None:
    """Raise a :class:`UsageError` unless ``target``'s kind declares ``capability``."""
    if capability not in target.capabilities:
        raise UsageError(
            f"{target.name}: a {target.kind} target cannot {capability} "
            f"({_HINTS.get(capability, 'not supported')})"
        )


def deployer(target: Target) -> Deploys:
    require(target, DEPLOY)
    return cast("Deploys", target)


def prober(target: Target) -> Probes:
    require(target, PROBE)
    return cast("Probes", target)


def provisioner(target: Target) -> Provisions:
    require(target, SETUP)
    return cast("Provisions", target)
