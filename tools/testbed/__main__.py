"""CLI: ``python -m tools.testbed up|down|rootfs``.

``up`` leaves the devices running after the command exits (state goes to
WORKDIR/testbed.json) so a developer can poke at them with
``ssh -F WORKDIR/ssh_config es-dev0``; ``down`` tears them down again.
``up --arch aarch64`` (or ``armv7l``) brings up emulated ARM boards instead;
``rootfs aarch64`` (or ``armv7l``) builds (once, minutes) and prints the cached root
they run on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import rootfs
from ._proc import TestbedError
from .cleanup import leftovers, purge
from .testbed import Testbed


def parse_cpus(spec: str) -> list[list[int]]:
    """``"0:1"`` -> [[0], [1]]; ``"0-1:2,3"`` -> [[0, 1], [2, 3]].

    Colons separate the per-device CPU sets, assigned round-robin to devices;
    each set is a comma list of cpus or ranges, as taskset -c takes them.
    """
    groups: list[list[int]] = []
    for group in spec.split(":"):
        cpus: list[int] = []
        for item in filter(None, group.split(",")):
            low, _, high = item.partition("-")
            cpus.extend(range(int(low), int(high or low) + 1))
        if not cpus:
            raise argparse.ArgumentTypeError(f"empty cpu set in {spec!r}")
        groups.append(cpus)
    return groups


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring devices up and leave them running")
    up.add_argument("-n", type=int, default=4, help="number of devices (default 4)")
    up.add_argument("--workdir", type=Path, required=True)
    up.add_argument("--prefix", default="es", help="name prefix (default es)")
    up.add_argument(
        "--cpus",
        type=parse_cpus,
        default=None,
        help="per-device cpu sets, e.g. 0:1 or 0-1:2-3 (round-robin)",
    )
    up.add_argument(
        "--cpu-cap",
        type=float,
        default=None,
        metavar="CORES",
        help="cap each device at CORES cpus (cgroup quota, e.g. 0.25), as if it had its own",
    )
    up.add_argument(
        "--no-device-python", action="store_true", help="skip building the shared device venv"
    )
    up.add_argument(
        "--arch",
        choices=sorted(rootfs.EMULATIONS),
        help="emulated boards of this arch (Debian under qemu-user), nothing set up on them",
    )
    down = sub.add_parser("down", help="tear down the testbed recorded in WORKDIR")
    down.add_argument("--workdir", type=Path, required=True)
    down.add_argument("--prefix", help="purge this prefix even without a state file")
    build = sub.add_parser("rootfs", help="build (once) the cached root of an emulated board")
    build.add_argument("arch", choices=sorted(rootfs.EMULATIONS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            bed = Testbed(
                args.n,
                args.workdir,
                args.prefix,
                args.cpus,
                device_python=not args.no_device_python,
                cpu_cap=args.cpu_cap,
                arch=args.arch,
            )
            bed.up()
            print(json.dumps([dev.to_dict() for dev in bed.devices], indent=2))
        elif args.command == "rootfs":
            root = rootfs.ensure_rootfs(args.arch)
            print(f"{root} (built in {rootfs.build_seconds(root)} s)")
        else:
            _down(args.workdir, args.prefix)
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


def _down(workdir: Path, prefix: str | None) -> None:
    """Tear down via the state file, or by prefix when there is none."""
    if (workdir / "testbed.json").exists():
        bed = Testbed.attach(workdir)
        bed.down()
        prefix = bed.prefix
    elif prefix is None:
        # Idempotent like Testbed.down(): a second "down" is not an error.
        print(
            f"testbed: no state in {workdir} (already down?); --prefix purges by name",
            file=sys.stderr,
        )
        return
    else:
        purge(prefix)
    remaining = leftovers(prefix)
    if remaining:
        raise TestbedError("still present after down: " + ", ".join(remaining))


if __name__ == "__main__":
    sys.exit(main())
