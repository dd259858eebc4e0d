"""Tuned session settings, stored per model (by sha256) on the target they were measured on.

    SSH target   ROOT/settings/<sha256>.json   under the device's deploy root
    local        <cache>/settings/<sha256>.json (``$EDGESHIP_CACHE`` or ~/.cache/edgeship)

Each target says where with :meth:`Target.settings_store`; :func:`apply_stored` is the
lookup ``Target.profile``/``Target.run`` make: when the caller gave no session options
(all defaults), the stored ones are used.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgeship.core.config import ProfileConfig
from edgeship.core.errors import EdgeshipError
from edgeship.core.hashing import file_sha256
from edgeship.targets.bundle import cache_dir
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.serde import JsonRecord

if TYPE_CHECKING:
    from edgeship.deploy import DeployStore

__all__ = [
    "SETTINGS_DIR",
    "SETTINGS_SCHEMA",
    "LocalSettingsStore",
    "RemoteSettingsStore",
    "SettingsStore",
    "StoredSettings",
    "apply_stored",
    "now",
]

SETTINGS_SCHEMA = "edgeship.settings/1"
SETTINGS_DIR = "settings"


@dataclass
class StoredSettings(JsonRecord):
    """The session ``tune`` picked for one model on one target, and what it measured."""

    model_sha256: str
    backend: str
    threads: int
    providers: list[str] = field(default_factory=list)
    execution_mode: str = "sequential"
    graph_optimization: str = "all"
    p50_ms: float = 0.0
    default_p50_ms: float = 0.0
    target: str = ""
    tuned_at: str = ""
    schema: str = SETTINGS_SCHEMA

    def session_options(self) -> SessionOptions:
        return SessionOptions(
            threads=self.threads,
            providers=tuple(self.providers),
            execution_mode=self.execution_mode,
            graph_optimization=self.graph_optimization,
        )


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class SettingsStore(Protocol):
    def read(self, sha256: str) -> StoredSettings | None: ...

    def write(self, settings: StoredSettings) -> str:
        """Store ``settings``; return where (a path on the host or the device)."""
        ...


class LocalSettingsStore:
    """JSON files under a host directory (the edgeship cache by default)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / SETTINGS_DIR

    def path(self, sha256: str) -> Path:
        return self.root / f"{_checked(sha256)}.json"

    def read(self, sha256: str) -> StoredSettings | None:
        try:
            data = json.loads(self.path(sha256).read_text())
        except (OSError, ValueError):
            return None
        return _parse(data)

    def write(self, settings: StoredSettings) -> str:
        path = self.path(settings.model_sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(settings.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
        return str(path)


class RemoteSettingsStore:
    """JSON files under ``ROOT/settings`` of an SSH target's deploy store."""

    def __init__(self, store: DeployStore) -> None:
        self.store = store

    def path(self, sha256: str) -> str:
        return str(self.store.layout.path(SETTINGS_DIR, f"{_checked(sha256)}.json"))

    def read(self, sha256: str) -> StoredSettings | None:
        data = self.store.read_json(self.path(sha256))
        return _parse(data) if data else None

    def write(self, settings: StoredSettings) -> str:
        path = self.path(settings.model_sha256)
        self.store.makedirs(SETTINGS_DIR)
        self.store.write_file(path, (json.dumps(settings.to_dict(), indent=2) + "\n").encode())
        return path


def apply_stored(store: SettingsStore, model: Path, config: ProfileConfig) -> ProfileConfig:
    """``config`` with the stored session for ``model`` when it asks for none. Settings
    measured for another backend than the one ``config`` forces are not applied."""
    if config.session.chooses_session() or not Path(model).is_file():
        return config
    stored = store.read(file_sha256(Path(model)))
    if stored is None or (config.backend and config.backend != stored.backend):
        return config
    return dataclasses.replace(config, session=config.session.refining(stored.session_options()))


def _parse(data: Any) -> StoredSettings | None:
    """Settings from JSON; files of another schema or malformed are ignored, not fatal."""
    if not isinstance(data, dict):
        return None
    try:
        settings = StoredSettings.from_dict(data)
        settings.session_options()
    except (EdgeshipError, TypeError, ValueError):
        return None
    return settings


def _checked(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256
