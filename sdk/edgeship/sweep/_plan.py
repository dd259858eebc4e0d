"""What a sweep has to do, given what its directory already holds (pure functions).

A sweep is variants × boards. Each variant is made once (a compression task); each cell
(variant, board) is one A/B of the variant against the base on that board. Work is known
by its *fingerprint*, a hash of everything its result depends on:

- a variant's: the base model's sha256, the variant's settings, the data's sha256;
- a cell's: the base's and the made variant's sha256, the board, how cells are measured
  (:class:`~.report.Policy`) and the evaluation data's sha256.

A stored record whose fingerprint matches and which succeeded is reused; one that failed,
is missing, or was made from something else (a changed recipe entry, model, data or
policy) is done again. A re-made variant whose bytes come out the same keeps its cells.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from edgeship.compress.config import AnyConfig, config_to_dict, steps_of
from edgeship.compress.methods import method_for
from edgeship.sweep._report import DONE, CellRecord, Policy, VariantRecord

__all__ = [
    "TRAIN_CPUS",
    "CellPlan",
    "Resources",
    "cell_fingerprint",
    "cell_reusable",
    "digest",
    "plan_cells",
    "resources_for",
    "trains",
    "variant_fingerprint",
    "variant_reusable",
]

TRAIN_CPUS = 2.0
"""CPUs a variant that trains (fine-tuning, distillation) declares; others declare one."""


@dataclass(frozen=True)
class Resources:
    """What a compression task declares to the scheduler. ``gpus``: wanted when the
    cluster has them (see :meth:`fit`)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def fit(self, cpus: float, gpus: float) -> Resources:
        """The declaration a cluster of ``cpus`` and ``gpus`` can satisfy: at most all of
        its CPUs; a GPU only where there is one (else the task would wait forever)."""
        fitted = min(self.cpus, cpus) if cpus > 0 else self.cpus
        return Resources(fitted, self.gpus if gpus >= self.gpus else 0.0)


def trains(config: AnyConfig) -> bool:
    """Whether any step of ``config`` trains (fine-tuning epochs, distillation)."""
    for step in steps_of(config):
        field = method_for(step).training
        if field is not None and getattr(step, field).epochs > 0:
            return True
    return False


def resources_for(config: AnyConfig) -> Resources:
    """A variant that trains declares :data:`TRAIN_CPUS` and a GPU; others one CPU."""
    return Resources(TRAIN_CPUS, 1.0) if trains(config) else Resources()


def digest(data: Mapping[str, Any]) -> str:
    """sha256 of ``data`` as canonical JSON (sorted keys), hex, first 16 bytes."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def variant_fingerprint(base_sha256: str, config: AnyConfig, data_sha256: str | None) -> str:
    return digest({"base": base_sha256, "config": config_to_dict(config), "data": data_sha256})


def cell_fingerprint(
    base_sha256: str,
    variant_sha256: str,
    board: str,
    policy: Policy,
    eval_sha256: str | None,
) -> str:
    return digest(
        {
            "base": base_sha256,
            "variant": variant_sha256,
            "board": board,
            "policy": asdict(policy),
            "eval": eval_sha256,
        }
    )


def variant_reusable(record: VariantRecord | None, fingerprint: str, model_sha256: str) -> bool:
    """A stored variant is reused when it succeeded, from the same inputs, and its model
    file is still the one it made (``model_sha256``: the file's hash now, "" if absent)."""
    return (
        record is not None
        and record.status == DONE
        and record.fingerprint == fingerprint
        and bool(model_sha256)
        and record.sha256 == model_sha256
    )


def cell_reusable(record: CellRecord | None, fingerprint: str) -> bool:
    """A stored cell is reused when it succeeded and was measured from the same inputs."""
    return record is not None and record.cell.status == DONE and record.fingerprint == fingerprint


@dataclass(frozen=True)
class CellPlan:
    """For one made variant: the boards to measure it on, and those already done."""

    variant: str
    todo: tuple[str, ...]
    reused: tuple[str, ...]


def plan_cells(
    variant: VariantRecord,
    boards: Sequence[str],
    stored: Mapping[str, CellRecord | None],
    fingerprints: Mapping[str, str],
) -> CellPlan:
    """Which of ``boards`` still need ``variant`` measured (``stored`` and
    ``fingerprints`` are by board)."""
    todo: list[str] = []
    reused: list[str] = []
    for board in boards:
        done = cell_reusable(stored.get(board), fingerprints[board])
        (reused if done else todo).append(board)
    return CellPlan(variant.name, tuple(todo), tuple(reused))
