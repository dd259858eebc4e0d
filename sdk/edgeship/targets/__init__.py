"""Targets: where the runtime runs. ``local`` is the embedded default."""

from __future__ import annotations

from .base import Target
from .local import LocalTarget

__all__ = ["LocalTarget", "Target", "open_target"]


def open_target(spec: str = "local") -> Target:
    """A target from its name. ``local`` for now; SSH hosts and groups plug in here."""
    if spec == "local":
        return LocalTarget()
    from ..errors import UsageError

    raise UsageError(f"unknown target {spec!r}")
