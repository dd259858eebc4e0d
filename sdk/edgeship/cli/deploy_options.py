"""Options that ``deploy`` and ``rollout`` share: the health check, signing, the lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeship.cli.common import shape_option
from edgeship.core.config import HealthPolicy, Signing
from edgeship.core.errors import UsageError

__all__ = ["health_options", "health_policy", "lock_wait_option", "signing_from", "signing_options"]


def health_options(p: argparse.ArgumentParser, gate: bool = False) -> None:
    """How a new version is checked on the device before it becomes active (``gate``:
    the check is a rollout's gate, and cannot be skipped)."""
    if not gate:
        p.add_argument(
            "--no-health-check",
            action="store_true",
            help="activate without loading and running the model on the device first",
        )
    p.add_argument(
        "--max-latency",
        type=float,
        metavar="MS",
        help="the health check also fails when the median latency is above MS",
    )
    shape_option(p, "dims for a generated health-check input with dynamic dims (repeatable)")


def health_policy(ns: argparse.Namespace) -> HealthPolicy | None:
    if getattr(ns, "no_health_check", False):
        if ns.max_latency is not None:
            raise UsageError("--max-latency is a health check: drop --no-health-check")
        return None
    if ns.shape:
        from edgeship_runtime.inputs import parse_shape_overrides  # numpy: only when given

        shapes = parse_shape_overrides(ns.shape)
    else:
        shapes = {}
    return HealthPolicy(max_latency_ms=ns.max_latency, shapes=shapes)


def signing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sign",
        type=Path,
        metavar="KEY",
        help="sign each model with this private key (edgeship keygen); a device that trusts "
        "a key (setup --trust) takes only releases signed by it",
    )
    p.add_argument(
        "--signature",
        type=Path,
        metavar="FILE",
        help="a release file `edgeship sign` wrote for this model (one model only)",
    )
    p.add_argument("--release", type=int, help="with --sign: the release number (default: now)")
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="let a device that checks signatures take a release older than its newest",
    )


def signing_from(ns: argparse.Namespace, models: list[Path]) -> Signing | None:
    if ns.sign is None and ns.signature is None:
        if ns.allow_downgrade or ns.release is not None:
            raise UsageError("--allow-downgrade and --release are for signed releases: --sign")
        return None
    if ns.signature is not None and len(models) > 1:
        raise UsageError("--signature signs one model; deploy several with --sign KEY")
    return Signing(ns.sign, ns.signature, ns.release, ns.allow_downgrade)


def lock_wait_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lock-wait",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to wait for another deploy holding the device's lock (default 60); "
        "a holder whose connection this host has lost is ended at once",
    )
