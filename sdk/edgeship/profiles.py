"""Board profiles: the data in ``targets/*.toml``, and matching a device to one.

A profile says what a board family prefers: backend order, ONNX Runtime providers,
default threads, where temperature and power can be read, what to pip-install.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

PROFILE_SCHEMA = "edgeship.target-profile/1"
_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BoardProfile:
    name: str
    description: str
    arch: str
    backends: tuple[str, ...]
    onnxruntime_providers: tuple[str, ...]
    threads: int
    pip: tuple[str, ...]
    match_arch: tuple[str, ...] = ()
    match_board: tuple[str, ...] = ()
    match_files: tuple[str, ...] = ()
    sensors: dict[str, Any] = field(default_factory=dict)

    def score(self, seen: dict[str, Any]) -> int:
        """How well a device fits: 0 no, 1 by arch only, 2+ by board name or marker file."""
        if seen.get("arch") not in self.match_arch:
            return 0
        board = str(seen.get("board") or "")
        files = set(seen.get("files") or ())
        specific = any(b in board for b in self.match_board) or bool(files & set(self.match_files))
        if self.match_board or self.match_files:
            return 2 if specific else 0
        return 1


def profiles_dir() -> Path:
    """``targets/`` of a source checkout, else the copy packaged in the wheel."""
    checkout = _PACKAGE_DIR.parents[1] / "targets"
    return checkout if checkout.is_dir() else _PACKAGE_DIR / "_targets"


def load_profile(path: Path) -> BoardProfile:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable board profile ({exc})") from exc
    if data.get("schema") != PROFILE_SCHEMA:
        raise ConfigError(f"{path}: schema must be {PROFILE_SCHEMA!r}")
    try:
        match, runtime = data.get("match", {}), data["runtime"]
        return BoardProfile(
            name=data["name"],
            description=data.get("description", ""),
            arch=data["arch"],
            backends=tuple(runtime["backends"]),
            onnxruntime_providers=tuple(runtime.get("onnxruntime_providers", ())),
            threads=int(runtime.get("threads", 0)),
            pip=tuple(runtime.get("pip", ())),
            match_arch=tuple(match.get("arch", (data["arch"],))),
            match_board=tuple(match.get("board", ())),
            match_files=tuple(match.get("files", ())),
            sensors=dict(data.get("sensors", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: missing or bad field in board profile: {exc}") from exc


def load_profiles(directory: Path | None = None) -> dict[str, BoardProfile]:
    directory = directory or profiles_dir()
    profiles = [load_profile(p) for p in sorted(directory.glob("*.toml"))]
    return {p.name: p for p in profiles}


def get_profile(name: str) -> BoardProfile:
    profiles = load_profiles()
    if name not in profiles:
        raise ConfigError(f"unknown board profile {name!r} (known: {', '.join(sorted(profiles))})")
    return profiles[name]


def match_profile(seen: dict[str, Any]) -> BoardProfile | None:
    """The best-fitting profile for what a probe saw (arch, board, files), or None."""
    scored = [(p.score(seen), p.name, p) for p in load_profiles().values()]
    best = max(scored, default=(0, "", None), key=lambda t: (t[0], t[1]))
    return best[2] if best[0] > 0 else None
