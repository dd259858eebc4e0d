"""``edgeship info [TARGET]`` (or ``--target``; default ``local``): the runtime's view of a
device."""

from __future__ import annotations

import argparse
from typing import Any

from edgeship.cli.common import on_targets, target_options
from edgeship.cli.output import table

__all__ = ["register", "render", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        description=__doc__,
        parents=[target_options(positional=True)],
    )
    p.set_defaults(handler=run)


def run(ns: argparse.Namespace) -> int:
    return on_targets(ns, lambda target: target.info(), lambda data: data, render)


def render(data: dict[str, Any]) -> str:
    env, rt = data["environment"], data["runtime"]
    lines = [
        f"target    {data['target']['name']} ({data['target']['kind']})",
        f"runtime   edgeship-runtime {rt['version']} (protocol {rt['protocol']}) "
        f"on Python {rt['python']}",
        f"device    {env['hostname']} · {env.get('board') or env['cpu_model']} · {env['arch']}",
        f"cpu       {env['cpu_model']} · {env['usable_cores']}/{env['logical_cores']} cores"
        + (f" · governor {env['cpu_governor']}" if env.get("cpu_governor") else ""),
        f"memory    {env['total_memory_mb'] / 1024:.1f} GiB",
        f"os        {env['os']}",
    ]
    if env.get("thermal_zones"):
        zones = ", ".join(f"{k} {v:.1f} °C" for k, v in env["thermal_zones"].items())
        lines.append(f"thermal   {zones}")
    rows = [
        [
            b["name"],
            "yes" if b["available"] else "no",
            b.get("version") or "-",
            ", ".join(b["providers"]) if b["available"] else (b.get("reason") or "")[:60],
        ]
        for b in data["backends"]
    ]
    return "\n".join(lines) + "\n\n" + table(["backend", "available", "version", "providers"], rows)
