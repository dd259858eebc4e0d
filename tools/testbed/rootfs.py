"""The root filesystem of an emulated board: Debian for another architecture, built once.

``debootstrap`` downloads and unpacks Debian for the board's architecture (``bookworm``
for arm64; ``bullseye`` for armhf, with apt's numpy: the 32-bit Raspberry Pi OS a user
has, whose Python 3.9 PyPI still has ``tflite-runtime`` wheels for) and runs its second
stage inside the new root, where every foreign binary runs under qemu-user through
binfmt_misc. The handler must be registered with the ``F`` flag (as Debian's
``qemu-user-static`` does): the kernel then opens the interpreter once, at registration,
and the root needs no qemu binary of its own.

The result is cached in :data:`CACHE` under a name keyed by everything it was built
from (suite, architecture, package list, mirror, :data:`BUILD_VERSION`), reused by every
later testbed, session and CI run on the machine; a builder takes a machine-wide lock
and renames a finished root into place, so a half-built one is never used. Each device
runs on its own writable overlay of it (:mod:`.emulated`); the cache stays read-only.
Building takes minutes (on a 2-core VM 6 for arm64, 3.5 for armhf, mostly the emulated
package configuration).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ._proc import TestbedError, run

CACHE = Path("/var/cache/edgeship-testbed")
MIRROR = "http://deb.debian.org/debian"
# What a user's freshly flashed board has: a Python that can make venvs, sshd (with its
# sftp server), flock (util-linux) and the CA store pip uses.
PACKAGES = ("python3", "python3-venv", "openssh-server", "util-linux", "ca-certificates")
BUILD_VERSION = 1  # bump when the build steps below change what a root holds
BUILD_TIMEOUT = 3600.0
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class Emulation:
    """How one board architecture is emulated: Debian's name and the binfmt handler."""

    arch: str  # as ``uname -m`` says it on the board
    debian_arch: str
    binfmt: str  # the binfmt_misc entry Debian's qemu-user-static registers
    suite: str
    packages: tuple[str, ...] = PACKAGES


EMULATIONS = {
    "aarch64": Emulation("aarch64", "arm64", "qemu-aarch64", "bookworm"),
    # PyPI has no armv7l numpy and tflite-runtime only up to Python 3.10: bullseye's
    # Python 3.9 with apt's numpy is what a 32-bit board that runs models has
    "armv7l": Emulation("armv7l", "armhf", "qemu-arm", "bullseye", (*PACKAGES, "python3-numpy")),
}


def emulation(arch: str) -> Emulation:
    try:
        return EMULATIONS[arch]
    except KeyError:
        known = ", ".join(EMULATIONS)
        raise TestbedError(f"no emulated board for arch {arch!r} (known: {known})") from None


def cache_key(arch: str, packages: tuple[str, ...] | None = None) -> str:
    """A short digest of everything a root is built from (``packages``: the arch's own)."""
    emu = emulation(arch)
    recipe = {
        "suite": emu.suite,
        "arch": emu.debian_arch,
        "packages": sorted(packages or emu.packages),
        "mirror": MIRROR,
        "build": BUILD_VERSION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def cached_root(arch: str, packages: tuple[str, ...] | None = None) -> Path:
    """Where the root for ``arch`` is (or will be) cached."""
    return CACHE / f"rootfs-{emulation(arch).debian_arch}-{cache_key(arch, packages)}"


def is_cached(arch: str, packages: tuple[str, ...] | None = None) -> bool:
    return (cached_root(arch, packages) / "usr" / "bin" / "python3").exists()


def missing_requirements(arch: str) -> list[str]:
    """What this machine lacks to build and run an ``arch`` board; empty when ready."""
    emu = emulation(arch)
    problems: list[str] = []
    entry = BINFMT_DIR / emu.binfmt
    if not (BINFMT_DIR / "status").exists():
        problems.append(
            "binfmt_misc is not mounted: mount -t binfmt_misc binfmt_misc " + str(BINFMT_DIR)
        )
    elif not entry.exists():
        problems.append(
            f"no {emu.binfmt} binfmt handler: apt-get install -y qemu-user-static "
            f"binfmt-support && update-binfmts --enable {emu.binfmt}"
        )
    else:
        text = entry.read_text()
        flags = next(
            (ln.split(":", 1)[1] for ln in text.splitlines() if ln.startswith("flags:")), ""
        )
        if not text.startswith("enabled"):
            problems.append(
                f"binfmt handler {emu.binfmt} is disabled: update-binfmts --enable {emu.binfmt}"
            )
        elif "F" not in flags:
            problems.append(
                f"binfmt handler {emu.binfmt} lacks the F flag (the root would need a qemu "
                "binary inside): install Debian's qemu-user-static"
            )
    if not is_cached(arch) and shutil.which("debootstrap") is None:
        problems.append("debootstrap missing: apt-get install -y debootstrap")
    return problems


def ensure_rootfs(arch: str, packages: tuple[str, ...] | None = None) -> Path:
    """The cached root for ``arch``, built first if absent (minutes; see the docstring)."""
    problems = missing_requirements(arch)
    if problems:
        raise TestbedError(f"cannot run an emulated {arch} board: " + "; ".join(problems))
    root = cached_root(arch, packages)
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    with (CACHE / f".{root.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_cached(arch, packages):
            _build(emulation(arch), packages or emulation(arch).packages, root)
    return root


def _build(emu: Emulation, packages: tuple[str, ...], root: Path) -> None:
    """debootstrap into a scratch directory beside ``root``, tidy, rename into place."""
    scratch = root.with_name(f"{root.name}.part")
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.monotonic()
    try:
        run(
            [
                "debootstrap",
                f"--arch={emu.debian_arch}",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                emu.suite,
                str(scratch),
                MIRROR,
            ],
            timeout=BUILD_TIMEOUT,
        )
        # no package cache, no host keys of its own (each device gets one), a record
        for stale in [
            *(scratch / "var/cache/apt/archives").glob("*.deb"),
            *(scratch / "etc/ssh").glob("ssh_host_*"),
        ]:
            stale.unlink()
        (scratch / "etc/edgeship-testbed-rootfs.json").write_text(
            json.dumps(
                {
                    "arch": emu.arch,
                    "suite": emu.suite,
                    "packages": sorted(packages),
                    "build_s": round(time.monotonic() - started),
                },
                indent=2,
            )
            + "\n"
        )
        os.rename(scratch, root)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def build_seconds(root: Path) -> int | None:
    """How long building ``root`` took, as recorded in it."""
    try:
        record = json.loads((root / "etc/edgeship-testbed-rootfs.json").read_text())
        return int(record["build_s"])
    except (OSError, ValueError, KeyError):
        return None
