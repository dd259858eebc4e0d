"""``edgeship setup``: make a device ready to run models, from nothing but sshd and Python.

Three ways, in order of preference for a given device:
- ``--python PATH``: a device Python that already has numpy and a backend (e.g. JetPack's
  onnxruntime-gpu); it is checked and recorded.
- a venv under the deploy root, pip-installing the board profile's packages online
  (those the profile says the board's own Python brings, ``system_packages``, stay
  apt's: the venv sees the system's site-packages and pip takes them only as wheels);
- the same venv from ``--wheelhouse``: the host downloads wheels for the device's arch,
  libc and Python (``pip download --platform ...``) and pushes them, for offline boards.

Backends are installed one by one: a board for which one backend has no wheel (32-bit
Raspberry Pi OS has no onnxruntime on PyPI) still gets the others, and a backend falls
back to its other packages, in the backend catalog's order (LiteRT to ``tflite-runtime``
where ``ai-edge-litert`` is not published). What was left out, and pip's reason, is in
the result.
"""

from __future__ import annotations

import datetime
import json
import posixpath
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.core.errors import ConfigError, RemoteCommandError, TargetError
from edgeship.targets.capabilities import Provisions
from edgeship.targets.profiles import BoardProfile, get_profile, match_profile
from edgeship.targets.ssh import DEVICE_CONFIG
from edgeship_runtime import MIN_PYTHON
from edgeship_runtime.backends.catalog import BASE_IMPORTS, backend_modules, package_fallbacks

__all__ = [
    "BASE_PACKAGES",
    "PIP_TIMEOUT_S",
    "SetupResult",
    "download_wheels",
    "install_each",
    "setup_device",
    "wheel_platforms",
]

# what the runtime needs whatever the backend; anything else in a package list is a backend
BASE_PACKAGES = frozenset(module.distribution for module in BASE_IMPORTS)
PIP_TIMEOUT_S = 1800.0


@dataclass
class SetupResult:
    target: str
    method: str
    python: str
    runtime: str
    profile: str | None
    packages: list[str] = field(default_factory=list)
    backends: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # package -> why it is not there
    notes: list[str] = field(default_factory=list)  # one line each, for the user


def setup_device(
    target: Provisions,
    python: str | None = None,
    wheelhouse: bool = False,
    profile: str | None = None,
    packages: list[str] | None = None,
) -> SetupResult:
    seen = target.probe(python or "python3")
    _require_python(target.name, seen)
    target.store().make_private()
    board, notes = _board(target, seen, profile, need=not (python or packages))
    if wheelhouse and board is not None and board.system_packages and not python:
        # the host's pip download cannot see the board's own numpy, so it cannot pick the
        # releases that fit it (tflite-runtime 2.13 wants a newer numpy than bullseye's)
        raise ConfigError(
            f"{target.name}: --wheelhouse cannot prepare profile {board.name}: it takes "
            f"{', '.join(board.system_packages)} from the board's package manager, which "
            "the host cannot resolve against; run setup online, or pass --python with a "
            "Python that has numpy and a backend"
        )
    runtime = target.install_runtime()
    skipped: dict[str, str] = {}
    if python:
        # the probe ran with this very Python: its backends are known, no second start
        _require_backends(target.name, seen)
        method, packages, backends = "existing-python", [], seen["backends"]
    else:
        wanted = packages or list(board.pip if board else ())
        system = board.system_packages if board else ()
        _require_system_packages(target.name, seen, system)
        python, packages, skipped = _make_venv(target, seen, wanted, wheelhouse, system)
        method = "venv-wheelhouse" if wheelhouse else "venv-online"
        backends = target.probe(python)["backends"]
        _require_backends(target.name, {"backends": backends}, skipped)
    name = board.name if board else None
    _record(target, {"python": python, "profile": name, "method": method})
    target.use_python(python)
    return SetupResult(
        target.name, method, python, runtime, name, packages, backends, skipped, notes
    )


def _board(
    target: Provisions, seen: dict[str, Any], name: str | None, need: bool
) -> tuple[BoardProfile | None, list[str]]:
    """The board profile (named, else detected) and a note when it is a generic one.
    Only a setup that installs the profile's packages (``need``) requires one."""
    name = name or target.board_name
    if name:
        return get_profile(name), []
    board = match_profile(seen)
    if board is None and need:
        raise ConfigError(
            f"{target.name}: no board profile fits (arch {seen.get('arch')}, board "
            f"{seen.get('board') or 'unknown'}); pass --profile NAME"
        )
    if board is not None and board.generic:
        return board, [f"board not recognised: using {board.name}; pass --profile to choose"]
    return board, []


def _require_python(label: str, seen: dict[str, Any]) -> None:
    """The runtime (and the venv made from this Python) needs MIN_PYTHON or newer."""
    version = str(seen["python"]["version"])
    if tuple(int(p) for p in version.split(".")[:2]) < MIN_PYTHON:
        raise ConfigError(
            f"{label}: {seen['python']['executable']} is Python {version}; the edgeship "
            f"runtime needs {'.'.join(map(str, MIN_PYTHON))} or newer: install a newer "
            "Python on the device and pass it with --python"
        )


def _require_system_packages(label: str, seen: dict[str, Any], system: tuple[str, ...]) -> None:
    """What the profile takes from the board's Python must be there before pip runs (pip
    would otherwise build it from source for an hour, or fail)."""
    found = seen.get("backends", {})
    missing = [p for p in system if not found.get(p.replace("-", "_"), {}).get("available")]
    if missing:
        raise ConfigError(
            f"{label}: {seen['python']['executable']} has no {missing[0]}, which this board "
            f"takes from its package manager (PyPI has no {seen.get('arch')} wheel): "
            f"install it (e.g. apt install python3-{missing[0]}) and run setup again"
        )


def _require_backends(
    label: str, seen: dict[str, Any], skipped: dict[str, str] | None = None
) -> None:
    found = seen.get("backends", {})
    if not found.get("numpy", {}).get("available"):
        raise ConfigError(f"{label}: the device Python has no numpy")
    modules = backend_modules()
    if not any(found.get(m, {}).get("available") for m in modules):
        why = "; ".join(f"{p}: {reason}" for p, reason in (skipped or {}).items())
        raise ConfigError(
            f"{label}: the device Python has none of {', '.join(modules)}"
            + (f" ({why})" if why else "")
        )


def install_each(
    packages: list[str], install: Callable[[str], object]
) -> tuple[list[str], dict[str, str]]:
    """``install`` every package; a backend that fails is tried under its fallback names,
    then left out with pip's reason. A base package (numpy, psutil) failing is an error.
    Returns (installed, {left-out package: reason})."""
    installed: list[str] = []
    skipped: dict[str, str] = {}
    for package in packages:
        if package in BASE_PACKAGES:
            _install_base(package, install)
            installed.append(package)
            continue
        reasons = []
        for candidate in (package, *package_fallbacks(package)):
            try:
                install(candidate)
            except TargetError as exc:
                reasons.append(f"{candidate}: {_last_line(exc)}")
                continue
            installed.append(candidate)
            break
        else:
            skipped[package] = "; ".join(reasons)
    return installed, skipped


def _install_base(package: str, install: Callable[[str], object]) -> None:
    """A package the runtime cannot do without: its failure is an error, with a way out
    (PyPI has no numpy wheel for 32-bit ARM, for one)."""
    try:
        install(package)
    except TargetError as exc:
        raise TargetError(
            f"{package}: {_last_line(exc)}; install it with the board's package manager "
            f"(e.g. apt install python3-{package}) and pass that Python with --python, or "
            "give pip an index that has it for this board (piwheels on Raspberry Pi OS)",
            target=exc.target,
            stderr_tail=exc.details.get("stderr_tail"),
        ) from None


def _last_line(exc: TargetError) -> str:
    """The last line pip (or venv) wrote on stderr: the reason, without the command."""
    lines = str(exc.details.get("stderr_tail") or "").strip().splitlines()
    return lines[-1].strip() if lines else exc.message


def _make_venv(
    target: Provisions,
    seen: dict[str, Any],
    packages: list[str],
    offline: bool,
    system: tuple[str, ...] = (),
) -> tuple[str, list[str], dict[str, str]]:
    """A venv under the deploy root with what of ``packages`` exists for the device:
    (its python, installed packages, {left-out package: reason}). ``system``: packages
    the venv takes from the board's Python (see :attr:`BoardProfile.system_packages`)."""
    store = target.store()
    venv = store.layout.path("venv")
    interpreter = seen["python"]["executable"]
    inherit = ["--system-site-packages"] if system else []
    try:
        target.run_command([interpreter, "-m", "venv", *inherit, venv], timeout=300)
    except RemoteCommandError as exc:
        raise ConfigError(
            f"{target.name}: {interpreter} cannot create a venv ({_last_line(exc)}); "
            "install the python3-venv package on the device, or pass --python with a "
            "Python that has numpy and a backend"
        ) from None
    vpy = posixpath.join(venv, "bin", "python")
    # only wheels of them: a dependency wanting a newer one than the board's makes pip
    # pick an older release of that dependency, not build one from source
    binary = [f"--only-binary={','.join(system)}"] if system else []
    pip = [vpy, "-m", "pip", "install", *binary, "--disable-pip-version-check"]
    if offline:
        with tempfile.TemporaryDirectory() as tmp:
            available, skipped = install_each(
                packages, lambda p: download_wheels(seen, [p], Path(tmp))
            )
            remote_dir = _push_wheelhouse(target, sorted(Path(tmp).glob("*.whl")))
        pip += ["--no-index", "--find-links", remote_dir]
        target.run_command(pip + available, timeout=PIP_TIMEOUT_S)
        return vpy, available, skipped
    try:  # one pip process for all: on a slow board each pip start costs seconds
        target.run_command([*pip, *packages], timeout=PIP_TIMEOUT_S)
        return vpy, list(packages), {}
    except RemoteCommandError:  # one has no wheel here: find which, keep the others
        pass
    installed, skipped = install_each(
        packages, lambda p: target.run_command([*pip, p], timeout=PIP_TIMEOUT_S)
    )
    return vpy, installed, skipped


def wheel_platforms(seen: dict[str, Any]) -> list[str]:
    """pip ``--platform`` tags a device accepts: manylinux up to its glibc, for its arch."""
    arch = seen["arch"]
    libc = str(seen.get("libc", ""))
    minor = int(libc.rsplit(".", 1)[-1]) if libc.startswith("glibc-") else 17
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 16, -1)]
    return [*tags, f"manylinux2014_{arch}", f"linux_{arch}"]


def download_wheels(seen: dict[str, Any], packages: list[str], dest: Path) -> list[Path]:
    version = ".".join(seen["python"]["version"].split(".")[:2])
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        "--python-version",
        version,
        "--implementation",
        "cp",
    ]
    for tag in wheel_platforms(seen):
        argv += ["--platform", tag]
    done = subprocess.run(argv + packages, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise TargetError(
            f"pip download for {seen['arch']}/Python {version} failed: {tail}",
            stderr_tail=done.stderr[-4000:],
        )
    return sorted(dest.glob("*.whl"))


def _push_wheelhouse(target: Provisions, wheels: list[Path]) -> str:
    store = target.store()
    store.makedirs("wheelhouse")
    remote_dir = store.layout.path("wheelhouse")
    for wheel in wheels:
        remote = store.layout.path("wheelhouse", wheel.name)
        if not store.exists(remote):
            target.put_file(wheel, remote)
    return remote_dir


def _record(target: Provisions, settings: dict[str, Any]) -> None:
    store = target.store()
    settings["setup_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    store.write_file(store.layout.path(DEVICE_CONFIG), json.dumps(settings, indent=2).encode())
