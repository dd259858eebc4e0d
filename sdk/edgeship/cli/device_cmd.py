"""``edgeship probe`` and ``edgeship setup``: see what a device has, make it ready."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.cli.common import on_targets, target_options
from edgeship.cli.output import table
from edgeship.targets import Target
from edgeship.targets.capabilities import prober, provisioner
from edgeship.targets.profiles import match_profile

if TYPE_CHECKING:
    from edgeship.targets.provision import SetupResult

__all__ = ["probe", "register", "render_probe", "run_probe", "run_setup"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        parents=[target_options(default_target=None, positional=True)],
    )
    p.set_defaults(handler=run_probe)
    s = sub.add_parser(
        "setup",
        parents=[target_options(default_target=None, positional=True)],
    )
    s.add_argument(
        "--wheelhouse",
        action="store_true",
        help="download wheels on this host and push them (device without internet)",
    )
    s.add_argument("--profile", help="board profile (default: detected)")
    s.add_argument("--packages", help="comma-separated pip packages instead of the profile's")
    s.add_argument(
        "--trust",
        type=Path,
        metavar="PUBKEY",
        help="from now on the device takes only releases signed with this key's private half "
        "(edgeship keygen; deploy --sign)",
    )
    s.set_defaults(handler=run_setup)


def probe(target: Target) -> dict[str, Any]:
    seen = prober(target).probe()
    board = match_profile(seen)
    seen["profile"] = board.name if board else None
    seen["target"] = target.identity()
    return seen


def render_probe(seen: dict[str, Any]) -> str:
    profile = seen["profile"] or f"unknown board (arch {seen['arch']}, board {seen['board']})"
    gpu = seen["gpu"]
    mem, disk = seen["memory"], seen["disk"]
    lines = [
        f"target    {seen['target']['name']} ({seen['target']['host']})",
        f"profile   {profile}",
        f"system    {seen['os']} · kernel {seen['kernel']} · {seen['arch']} · {seen['libc']}",
        f"python    {seen['python']['version']} ({seen['python']['executable']})",
        f"cpu       {seen['cores']} cores · memory {(mem['total_mb'] or 0) / 1024:.1f} GiB "
        f"({(mem['available_mb'] or 0) / 1024:.1f} free)",
        f"disk      {disk.get('free_mb') or 0:,.0f} MiB free at {disk['path']}",
        f"gpu       {gpu['nvidia_smi'] or gpu['nv_tegra_release'] or 'none seen'}",
    ]
    thermal = seen["sensors"]["thermal_c"]
    if thermal:
        lines.append("thermal   " + ", ".join(f"{k} {v:.1f} °C" for k, v in thermal.items()))
    rows = [
        [
            name,
            "yes" if b["available"] else "no",
            b.get("version") or "-",
            ", ".join(b.get("providers", [])) or (b.get("reason") or "")[:50],
        ]
        for name, b in seen["backends"].items()
    ]
    return "\n".join(lines) + "\n\n" + table(["module", "imports", "version", "providers"], rows)


def run_probe(ns: argparse.Namespace) -> int:
    return on_targets(ns, probe, lambda seen: seen, render_probe)


def run_setup(ns: argparse.Namespace) -> int:
    from edgeship.deploy.signing import install_trust, read_public
    from edgeship.targets.provision import setup_device  # imports the SSH target, hence paramiko

    packages = [p for p in (ns.packages or "").split(",") if p] or None
    if ns.trust is not None:
        read_public(ns.trust)  # a bad key file is refused before any device is touched

    def setup(target: Target) -> SetupResult:
        result = setup_device(
            provisioner(target),
            python=ns.python,
            wheelhouse=ns.wheelhouse,
            profile=ns.profile,
            packages=packages,
        )
        if ns.trust is not None:
            install_trust(provisioner(target).store(), ns.trust)
        return result

    def render(result: SetupResult) -> str:
        ready = [k for k, v in result.backends.items() if v.get("available")]
        left_out = "".join(f"\n  left out {p}: {why}" for p, why in result.skipped.items())
        trusted = f"\n  trusts   releases signed by {ns.trust}" if ns.trust else ""
        return (
            f"{result.target}: ready ({result.method}, profile {result.profile})\n"
            f"  python   {result.python}\n  runtime  {result.runtime}\n"
            f"  modules  {', '.join(ready)}{left_out}{trusted}"
            + "".join(f"\n  note: {n}" for n in result.notes)
        )

    return on_targets(ns, setup, asdict, render)
