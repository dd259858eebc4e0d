"""``edgeship rollout MODEL --target GROUP --phases 1,25%,100%``: a canary rollout,
phase by phase, each gated on the health check; see :mod:`edgeship.rollout`."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeship.cli.common import target_options, targets_from_args
from edgeship.cli.deploy_options import (
    health_options,
    health_policy,
    lock_wait_option,
    signing_from,
    signing_options,
)
from edgeship.cli.output import print_json, print_stderr, table
from edgeship.rollout import RolloutPlan, RolloutReport, rollout

__all__ = ["register", "render", "run_rollout"]


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "rollout",
        parents=[target_options(default_target=None)],
    )
    r.add_argument("model", type=Path, metavar="MODEL", help="the model file to roll out")
    r.add_argument("--name", help="deployment name (default: the file's stem)")
    r.add_argument(
        "--phases",
        default="1,25%,100%",
        help="devices with the model after each phase: counts or percentages of the group, "
        "the last 100%% (default 1,25%%,100%%)",
    )
    r.add_argument(
        "--max-failures",
        type=int,
        default=0,
        metavar="K",
        help="devices of one phase that may fail before the rollout stops (default 0)",
    )
    r.add_argument("--keep", type=int, default=3, help="older versions to keep (default 3)")
    health_options(r, gate=True)
    signing_options(r)
    lock_wait_option(r)
    r.set_defaults(handler=run_rollout)


def run_rollout(ns: argparse.Namespace) -> int:
    health = health_policy(ns)
    assert health is not None  # rollout's gates are the health check: it has no opt-out
    plan = RolloutPlan(
        phases=tuple(ns.phases.split(",")),
        name=ns.name,
        health=health,
        signing=signing_from(ns, [ns.model]),
        max_failures=ns.max_failures,
        forks=ns.forks,
    )
    report = rollout(ns.model, targets_from_args(ns), plan)
    if ns.json:
        print_json(report.to_dict())
    else:
        print(render(report))
    for device in report.devices:
        if device.error:
            print_stderr(f"error: {device.target}: {device.error}")
    return 0 if report.completed else 1


def render(report: RolloutReport) -> str:
    rows = [
        [d.target, str(d.phase or "-"), d.state, d.version or "-", d.previous or "-"]
        for d in report.devices
    ]
    shown = table(["target", "phase", "state", "version", "before"], rows)
    sizes = " -> ".join(str(s) for s in report.phases)
    if report.completed:
        verdict = f"rollout of {report.name} complete ({sizes} devices)"
    else:
        verdict = (
            f"rollout of {report.name} stopped at phase {report.stopped_at_phase} of "
            f"{len(report.phases)} ({sizes} devices): its gate failed; the devices it had "
            "updated were rolled back"
        )
    return f"{shown}\n{verdict}"
