"""Deployment on a device: content-addressed blobs, numbered versions, atomic activation.

The store (and paramiko with it) is imported on first use (PEP 562): the API names a
:class:`~.health.HealthPolicy` default without loading the SSH stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeship.deploy.layout import validate_name

if TYPE_CHECKING:
    from edgeship.deploy.store import Deployment, DeployStore, ModelVersions

__all__ = ["DeployStore", "Deployment", "ModelVersions", "validate_name"]


def __getattr__(name: str) -> Any:
    if name in ("DeployStore", "Deployment", "ModelVersions"):
        from edgeship.deploy import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
