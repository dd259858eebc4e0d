"""Reports of ``optimize`` and ``tune``: typed, with units in the names, JSON round trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeship.models.ref import ModelRef
from edgeship.models.verify import VerifyReport
from edgeship_runtime.serde import JsonRecord

__all__ = [
    "OPTIMIZE_SCHEMA",
    "TUNE_SCHEMA",
    "Measurement",
    "OptimizeReport",
    "StepRecord",
    "Trial",
    "TuneReport",
]

OPTIMIZE_SCHEMA = "edgeship.optimize/1"
TUNE_SCHEMA = "edgeship.tune/1"


@dataclass
class StepRecord:
    """One optimization step: ``nodes`` in the graph after it, ``seconds`` it took."""

    name: str
    detail: str
    nodes: int
    seconds: float


@dataclass
class Measurement:
    """Latency of one model under one session setting, median over interleaved rounds."""

    model: str
    setting: str
    p50_ms: float
    mean_ms: float
    load_ms: float
    p50_per_round_ms: list[float] = field(default_factory=list)


def _empty_verify() -> VerifyReport:
    return VerifyReport(samples=0, data="", tolerance={})


@dataclass
class OptimizeReport(JsonRecord):
    source: ModelRef
    result: ModelRef
    level_requested: str
    level: str
    level_note: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    ops_before: dict[str, int] = field(default_factory=dict)
    ops_after: dict[str, int] = field(default_factory=dict)
    verification: VerifyReport = field(default_factory=_empty_verify)
    measurements: list[Measurement] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=dict)
    written: bool = False
    forced: bool = False
    schema: str = OPTIMIZE_SCHEMA


@dataclass
class Trial:
    """One candidate session: its settings and its latency (median of per-round p50s)."""

    threads: int
    providers: list[str]
    execution_mode: str
    p50_ms: float
    mean_ms: float
    p50_per_round_ms: list[float] = field(default_factory=list)
    error: str = ""

    def label(self) -> str:
        threads = "default" if self.threads == 0 else str(self.threads)
        providers = ",".join(p.replace("ExecutionProvider", "") for p in self.providers) or "-"
        return f"threads={threads} providers={providers} mode={self.execution_mode}"


@dataclass
class TuneReport(JsonRecord):
    """What ``tune`` tried on the device, the default it is compared with, and the pick.

    ``gain`` is default p50 / best p50 (1.25 means 25 % more inferences per second);
    ``note`` says why the defaults were kept when a candidate was faster but not clearly."""

    model: ModelRef
    backend: str
    profile: str
    rounds: int
    runs: int
    default: Trial
    best: Trial
    trials: list[Trial] = field(default_factory=list)
    gain: float = 1.0
    note: str = ""
    stored_at: str = ""
    target: dict[str, Any] = field(default_factory=dict)
    schema: str = TUNE_SCHEMA
