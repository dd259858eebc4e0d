"""Board profiles: the data in ``targets/*.toml``, and matching a device to one.

A profile says what a board family prefers: backend order, ONNX Runtime providers (both
checked against the backend catalog, :mod:`edgeship_runtime.backends.catalog`),
default threads, where temperature and power can be read, what to pip-install, and
which of those the board's own Python must bring instead (``system_packages``: apt's
``python3-numpy`` on 32-bit ARM, where PyPI has no numpy wheel).

A device matches a profile by what the probe saw (:mod:`edgeship_runtime.probe`), the
most specific evidence first:

4. its name (device-tree model, DMI vendor/product/board) contains one of ``[match] board``
3. its device-tree ``compatible`` list holds one of ``[match] compatible`` (the SoC)
2. one of ``[match] files`` exists (``/etc/nv_tegra_release``)
1. its arch is in ``[match] arch``, for a profile that names no board: the generic ones
0. ``[match] arch = ["*"]``: any arch (``generic``)

A profile with board, compatible or file criteria matches only through them. Within a
level the longer matched name wins ("Jetson Orin Nano" over "Jetson"), then the name.
Every Linux device gets a profile: at worst a generic one, which :attr:`BoardProfile.generic`
says, so setup can tell the user the board was not recognised.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "ANY_ARCH",
    "NO_FIT",
    "PROFILE_SCHEMA",
    "BoardProfile",
    "Fit",
    "device_names",
    "get_profile",
    "load_profile",
    "load_profiles",
    "match_profile",
    "profiles_dir",
]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from edgeship.core.errors import ConfigError
from edgeship_runtime.backends.catalog import backend_names, get_entry

PROFILE_SCHEMA = "edgeship.target-profile/1"
ANY_ARCH = "*"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the edgeship package


class Fit(NamedTuple):
    """How well a device fits a profile: ``level`` (0-4, see the module docstring), then
    ``detail`` (the length of the matched name) to order profiles of one level."""

    level: int
    detail: int = 0


NO_FIT = Fit(-1)


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
    match_compatible: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    """Former names, still accepted by :func:`get_profile` (a device's recorded setup)."""
    system_packages: tuple[str, ...] = ()
    """Of :attr:`pip`, those the board's Python has from its package manager: setup's venv
    sees them (``--system-site-packages``) and pip never builds its own."""

    @property
    def generic(self) -> bool:
        """Matched by arch alone: what a board nothing names gets."""
        return not (self.match_board or self.match_compatible or self.match_files)

    def fit(self, seen: dict[str, Any]) -> Fit:
        """How well a device fits (see the module docstring); :data:`NO_FIT` if not."""
        arch = seen.get("arch")
        if arch not in self.match_arch and ANY_ARCH not in self.match_arch:
            return NO_FIT
        if self.generic:
            return Fit(1) if arch in self.match_arch else Fit(0)
        named = _longest_in(self.match_board, device_names(seen))
        if named:
            return Fit(4, named)
        compatible = _longest_in(self.match_compatible, seen.get("compatible") or (), exact=True)
        if compatible:
            return Fit(3, compatible)
        if set(seen.get("files") or ()) & set(self.match_files):
            return Fit(2)
        return NO_FIT


def device_names(seen: dict[str, Any]) -> list[str]:
    """The names a device gives itself: its board (device-tree model) and its DMI fields."""
    dmi = seen.get("dmi") or {}
    names = [seen.get("board"), *(dmi.get(k) for k in ("sys_vendor", "product_name", "board_name"))]
    return [str(n) for n in names if n]


def _longest_in(wanted: Iterable[str], names: Iterable[str], exact: bool = False) -> int:
    """The length of the longest of ``wanted`` found in ``names`` (case-insensitive: as a
    substring, or equal with ``exact``), 0 if none."""
    names = [n.lower() for n in names]
    found = [
        len(w)
        for w in wanted
        if any((w.lower() == n) if exact else (w.lower() in n) for n in names)
    ]
    return max(found, default=0)


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
    runtime_table = data.get("runtime")
    if isinstance(runtime_table, dict):
        _check_names(path, runtime_table, "backends", "backend", backend_names())
        providers = get_entry("onnxruntime").providers
        _check_names(path, runtime_table, "onnxruntime_providers", "provider", providers)
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
            match_compatible=tuple(match.get("compatible", ())),
            aliases=tuple(data.get("aliases", ())),
            system_packages=_system_packages(path, runtime),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: missing or bad field in board profile: {exc}") from exc


def _system_packages(path: Path, runtime: dict[str, Any]) -> tuple[str, ...]:
    """``[runtime] system_packages``: each one of ``[runtime] pip`` (what setup installs)."""
    system = tuple(runtime.get("system_packages", ()))
    stray = [p for p in system if p not in runtime.get("pip", ())]
    if stray:
        raise ConfigError(f"{path}: system package {stray[0]!r} is not in [runtime] pip")
    return system


def _check_names(
    path: Path, runtime: dict[str, Any], key: str, what: str, known: Sequence[str]
) -> None:
    """``[runtime] key`` names only ``known`` ones: the backend catalog's backends, or
    ONNX Runtime's providers in it."""
    names = runtime.get(key)
    unknown = [n for n in names if n not in known] if isinstance(names, list) else []
    if unknown:
        raise ConfigError(
            f"{path}: unknown {what} {unknown[0]!r} in [runtime] {key} (known: {', '.join(known)})"
        )


def load_profiles(directory: Path | None = None) -> dict[str, BoardProfile]:
    directory = directory or profiles_dir()
    profiles = [load_profile(p) for p in sorted(directory.glob("*.toml"))]
    return {p.name: p for p in profiles}


def get_profile(name: str) -> BoardProfile:
    """The profile called ``name`` (or formerly called so: its ``aliases``)."""
    profiles = load_profiles()
    if name in profiles:
        return profiles[name]
    for profile in profiles.values():
        if name in profile.aliases:
            return profile
    raise ConfigError(f"unknown board profile {name!r} (known: {', '.join(sorted(profiles))})")


def match_profile(
    seen: dict[str, Any], profiles: Iterable[BoardProfile] | None = None
) -> BoardProfile | None:
    """The best-fitting profile for what a probe saw (arch, board, dmi, compatible,
    files), or None when none fits (not even ``generic``, the any-arch one)."""
    candidates = load_profiles().values() if profiles is None else profiles
    fits = [(p.fit(seen), p) for p in candidates]
    # the best fit; among equals the first name, so the answer never depends on file order
    fit, best = min(
        fits, key=lambda t: (-t[0].level, -t[0].detail, t[1].name), default=(NO_FIT, None)
    )
    return best if fit != NO_FIT else None
