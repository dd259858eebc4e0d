"""Backends: the catalog of what each is (:mod:`.catalog`) and the protocol each adapter
implements (:mod:`.base`). Nothing here imports an engine: engines load on first use."""

from __future__ import annotations

from .base import (
    Backend,
    BackendInfo,
    EngineBackend,
    Session,
    SessionOptions,
    choose_backend,
    get_backend,
)
from .catalog import BackendEntry, Import, backend_names, default_backend, register_backend

__all__ = [
    "Backend",
    "BackendEntry",
    "BackendInfo",
    "EngineBackend",
    "Import",
    "Session",
    "SessionOptions",
    "backend_names",
    "choose_backend",
    "default_backend",
    "get_backend",
    "register_backend",
]
