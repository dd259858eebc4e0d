"""``edgeship bundle --out FILE.pyz``: the device runtime as one file."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeship.targets.bundle import build_bundle

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", description=__doc__)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("edgeship-runtime.pyz"),
        help="where to write the zipapp (default edgeship-runtime.pyz)",
    )
    p.set_defaults(handler=run)


def run(ns: argparse.Namespace) -> int:
    path = build_bundle(ns.out)
    print(f"{path} ({path.stat().st_size:,} bytes): run it with python3 {path} info")
    return 0
