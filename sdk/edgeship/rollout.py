"""Canary rollout: a model to a group of devices in phases, each phase gated on the last.

``edgeship rollout MODEL --target GROUP --phases 1,25%,100%`` deploys to the first device,
then to a quarter of the group, then to all, in the group's order. Every device's deploy
is health-checked (:mod:`.deploy.health`: it loads and runs on the device, finite
outputs, ``--max-latency``), so a device whose check fails keeps its previous version.
The gate of a phase is that at most ``max_failures`` of the devices in it failed (by
default none); when a gate fails, the rollout stops there, the devices this rollout
activated the model on are rolled back to the version they had before (a device that
had none has the deployment removed), and the devices of later phases are not touched.

The report says, per device, its phase and what happened: ``activated``, ``unchanged``
(it had this model already), ``failed`` (with the error), ``rolled back``, ``rollback
failed`` (with the error) or ``skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeship.core.config import DEFAULT_HEALTH, HealthPolicy, Signing
from edgeship.core.errors import UsageError
from edgeship.deploy.layout import validate_name
from edgeship.targets import Target
from edgeship.targets.capabilities import deployer
from edgeship.targets.fleet import DEFAULT_FORKS, run_each

__all__ = ["SCHEMA", "DeviceOutcome", "RolloutPlan", "RolloutReport", "phase_sizes", "rollout"]

SCHEMA = "edgeship.rollout/1"
ACTIVATED, UNCHANGED, FAILED = "activated", "unchanged", "failed"
ROLLED_BACK, ROLLBACK_FAILED, SKIPPED = "rolled back", "rollback failed", "skipped"


def phase_sizes(phases: Sequence[str], devices: int) -> list[int]:
    """How many devices have the model after each phase: ``"1"`` is one device, ``"25%"``
    a quarter of the group (rounded up, at least one). Sizes must grow, and the last
    phase must reach the whole group."""
    if devices < 1:
        raise UsageError("rollout: the target names no device")
    sizes: list[int] = []
    for phase in phases:
        text = phase.strip()
        try:
            size = (
                max(1, math.ceil(float(text[:-1]) / 100 * devices))
                if text.endswith("%")
                else int(text)
            )
        except ValueError:
            raise UsageError(f"--phases: {phase!r} is neither a count nor a percentage") from None
        if not 1 <= size <= devices or (sizes and size <= sizes[-1]):
            raise UsageError(
                f"--phases {','.join(phases)}: each phase must add devices, from 1 to the "
                f"group's {devices} ({phase!r} gives {size})"
            )
        sizes.append(size)
    if not sizes or sizes[-1] != devices:
        raise UsageError(f"--phases: the last phase must reach all {devices} devices (100%)")
    return sizes


@dataclass(frozen=True)
class RolloutPlan:
    """``phases`` as given (``"1"``, ``"25%"``, ``"100%"``); ``max_failures``: devices of
    one phase that may fail its gate; ``forks``: devices deployed to at once."""

    phases: tuple[str, ...] = ("1", "25%", "100%")
    name: str | None = None
    health: HealthPolicy = DEFAULT_HEALTH
    signing: Signing | None = None
    max_failures: int = 0
    forks: int = DEFAULT_FORKS

    def __post_init__(self) -> None:
        if self.max_failures < 0:
            raise UsageError(f"--max-failures must be 0 or more, got {self.max_failures}")


@dataclass
class DeviceOutcome:
    target: str
    phase: int  # 1-based; 0: never reached
    state: str = SKIPPED
    version: str | None = None
    previous: str | None = None  # the version active before this rollout
    error: str | None = None


@dataclass
class RolloutReport:
    model: str
    name: str
    phases: list[int]  # devices with the model after each phase
    completed: bool = False
    stopped_at_phase: int | None = None
    devices: list[DeviceOutcome] = field(default_factory=list)
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollout(model: Path, targets: Sequence[Target], plan: RolloutPlan) -> RolloutReport:
    """Deploy ``model`` to ``targets`` (in order) phase by phase; see the module docstring."""
    name = validate_name(plan.name or model.stem)
    sizes = phase_sizes(plan.phases, len(targets))
    report = RolloutReport(str(model), name, sizes)
    outcomes = {t.name: DeviceOutcome(t.name, 0) for t in targets}
    report.devices = [outcomes[t.name] for t in targets]
    start = 0
    for number, size in enumerate(sizes, 1):
        batch = list(targets[start:size])
        for target in batch:
            outcomes[target.name].phase = number
        for result in run_each(batch, lambda t: _deploy_one(t, model, name, plan), plan.forks):
            _record(outcomes[result.target], result.value, result.error)
        failed = sum(outcomes[t.name].state == FAILED for t in batch)
        if failed > plan.max_failures:
            report.stopped_at_phase = number
            done = [t for t in targets[:size] if outcomes[t.name].state == ACTIVATED]
            undone = run_each(done, lambda t: _undo(t, name, outcomes[t.name]), plan.forks)
            for failure in (u for u in undone if u.error is not None):
                outcomes[failure.target].state = ROLLBACK_FAILED
                outcomes[failure.target].error = str(failure.error)
            return report
        start = size
    report.completed = True
    return report


def _deploy_one(
    target: Target, model: Path, name: str, plan: RolloutPlan
) -> tuple[str | None, str, bool]:
    """(version active before, version active now, whether this deploy activated it)."""
    device = deployer(target)
    previous = device.store().active_version(name)
    done = device.deploy(model, name, plan.health, plan.signing)
    return previous, done.version, done.activated


def _record(outcome: DeviceOutcome, value: Any, error: BaseException | None) -> None:
    if error is not None:
        outcome.state, outcome.error = FAILED, str(error)
        return
    outcome.previous, outcome.version, activated = value
    outcome.state = ACTIVATED if activated else UNCHANGED


def _undo(target: Target, name: str, outcome: DeviceOutcome) -> None:
    """Put back what the device had active before the rollout (nothing: remove it)."""
    store = deployer(target).store()
    if outcome.previous is None:
        store.remove(name)
    else:
        store.rollback(name, outcome.previous)
    outcome.state = ROLLED_BACK
