"""``edgeship deploy MODEL... --target T``, ``ls TARGET``, ``rollback NAME --target T``,
``rm NAME --target T``: versioned models on devices (``ls`` also takes ``--target``)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.api import check_deploy_names, deploy
from edgeship.cli.common import on_targets, target_options
from edgeship.cli.deploy_options import (
    health_options,
    health_policy,
    lock_wait_option,
    signing_from,
    signing_options,
)
from edgeship.cli.output import table
from edgeship.core.errors import DeployError
from edgeship.targets import Target
from edgeship.targets.capabilities import deployer

if TYPE_CHECKING:
    from edgeship.deploy import Deployment, ModelVersions

__all__ = ["register", "rollback", "run_deploy", "run_ls", "run_rm", "run_rollback"]


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "deploy",
        parents=[target_options(default_target=None)],
    )
    d.add_argument("models", nargs="+", metavar="MODEL", help="model file(s) to deploy")
    d.add_argument("--name", help="deployment name (default: the file's stem; one model only)")
    d.add_argument("--keep", type=int, default=3, help="older versions to keep (default 3)")
    health_options(d)
    signing_options(d)
    lock_wait_option(d)
    d.set_defaults(handler=run_deploy)
    ls = sub.add_parser(
        "ls",
        parents=[target_options(default_target=None, positional=True)],
    )
    ls.set_defaults(handler=run_ls)
    rb = sub.add_parser(
        "rollback",
        parents=[target_options(default_target=None)],
    )
    rb.add_argument("name", help="the deployed model's name (--name at deploy)")
    rb.add_argument("--to", metavar="VERSION", help="e.g. v0002 (default: the previous one)")
    lock_wait_option(rb)
    rb.set_defaults(handler=run_rollback)
    rm = sub.add_parser(
        "rm",
        parents=[target_options(default_target=None)],
    )
    rm.add_argument("name", help="the deployed model's name (--name at deploy)")
    lock_wait_option(rm)
    rm.set_defaults(handler=run_rm)


def _render_deployments(items: list[Deployment]) -> str:
    rows = [
        [
            d.name,
            d.version,
            d.sha256[:12],
            "sent" if d.uploaded else "already there",
            "activated" if d.activated else "unchanged",
            d.path,
        ]
        for d in items
    ]
    return table(["name", "version", "sha256", "upload", "state", "path"], rows)


def run_deploy(ns: argparse.Namespace) -> int:
    models = [Path(m) for m in ns.models]
    check_deploy_names(models, ns.name)  # before any device is contacted
    health = health_policy(ns)
    signing = signing_from(ns, models)
    return on_targets(
        ns,
        lambda t: deploy(models, t, name=ns.name, health=health, signing=signing),
        lambda items: [asdict(d) for d in items],
        _render_deployments,
    )


def _list(target: Target) -> list[ModelVersions]:
    store = deployer(target).store()
    return [store.describe(name) for name in store.names()]


def _render_ls(items: list[ModelVersions]) -> str:
    rows: list[list[str]] = []
    notes: list[str] = []
    for item in items:
        for meta in item.versions:
            mark = "*" if meta.get("version") == item.active else " "
            rows.append(
                [
                    item.name,
                    f"{mark}{meta.get('version')}",
                    str(meta.get("sha256") or "-")[:12],
                    f"{meta.get('size_bytes') or 0:,}",
                    str(meta.get("source") or "-"),
                    str(meta.get("deployed_at") or "-"),
                    _state(meta, item.missing.get(str(meta.get("version")))),
                ]
            )
        notes += [f"{item.name}: {note}" for note in item.notes]
    if not rows and not notes:
        return "no models deployed"
    header = ["name", "version", "sha256", "bytes", "source", "deployed", "state"]
    shown = table(header, rows) if rows else "no complete versions"
    return "\n".join([shown, *(f"note: {n}" for n in notes)])


def _state(meta: dict[str, Any], missing: str | None) -> str:
    """``ok``; ``failed: <why>`` for a version whose health check failed; else what of
    its files is ``missing`` on the device (``blob missing``)."""
    if meta.get("state") != "failed":
        return missing or "ok"
    error = str((meta.get("health") or {}).get("error") or "health check")
    return f"failed: {error[:60]}"


def run_ls(ns: argparse.Namespace) -> int:
    def to_json(items: list[ModelVersions]) -> Any:
        return [asdict(i) for i in items]

    return on_targets(ns, _list, to_json, _render_ls)


def rollback(target: Target, name: str, to: str | None) -> Deployment:
    """Activate version ``to`` (default: the one before the active) of deployment ``name``;
    a name that is not deployed is one clear error naming those that are."""
    store = deployer(target).store()
    names = store.names()
    if name not in names:
        raise DeployError(
            f"{target.name}: no model named {name!r} is deployed "
            f"(deployed: {', '.join(names) or 'none'})",
            target=target.name,
        )
    return store.rollback(name, to)


def run_rollback(ns: argparse.Namespace) -> int:
    return on_targets(
        ns,
        lambda t: rollback(t, ns.name, ns.to),
        asdict,
        lambda d: f"{d.name}: {d.version} is active ({d.path})",
    )


def run_rm(ns: argparse.Namespace) -> int:
    def remove(target: Target) -> str:
        deployer(target).store().remove(ns.name)
        return ns.name

    return on_targets(ns, remove, lambda name: {"removed": name}, lambda n: f"removed {n}")
