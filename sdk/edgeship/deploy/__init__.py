"""Deployment on a device: content-addressed blobs, numbered versions, atomic activation."""

from .layout import validate_name
from .store import Deployment, DeployStore, ModelVersions

__all__ = ["DeployStore", "Deployment", "ModelVersions", "validate_name"]
