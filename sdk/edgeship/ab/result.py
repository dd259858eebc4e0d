"""The A/B report: typed dataclasses that round-trip to versioned JSON.

Schema ``edgeship.ab/1.2``; every ``edgeship.ab/1`` revision stays readable (1.1 added the
inputs each model was fed, each session's conditions and warm-up, and the op types'
shares and node counts, later the device's state in each conditions; 1.2 windows sized
by time: the runs of each session, the spread of the session medians, the per-session
time budget and precision asked for, each device's plan, the causes of an unstable
session, and whether the measurement as a whole was stable. Absent from an older file,
they read as empty or None; an older file's sessions are equal parts of its runs).

Units are in the field names: ``*_ms`` milliseconds, ``*_mb`` mebibytes, ``*_bytes`` bytes,
``*_pp`` percentage points; ratios and fractions are plain numbers (``latency_ratio`` =
variant median / base median, so below 1 is faster; ``speedup`` is its inverse). The
human table, Markdown and HTML are views over this data.
"""

# serde rebuilds Optional fields from typing.Optional (not from ``X | None``), so keep it.
# ruff: noqa: UP045

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from edgeship.models.estimate import Interval
from edgeship.models.kinds import OutputVerdict
from edgeship_runtime.report import (
    BackendUsage,
    DeviceState,
    Environment,
    OpProfile,
    TensorSummary,
)
from edgeship_runtime.serde import JsonRecord, check_schema, from_jsonable

__all__ = [
    "AB_SCHEMA",
    "AB_SCHEMA_MAJOR",
    "FASTER",
    "NO_DIFFERENCE",
    "SLOWER",
    "UNSTABLE_SHARE",
    "VERDICTS",
    "ABReport",
    "Accuracy",
    "Agreement",
    "Comparison",
    "Conditions",
    "Design",
    "DeviceAB",
    "DeviceFailure",
    "GateResult",
    "Interval",
    "LatencySummary",
    "MemorySummary",
    "ModelResult",
    "OpTypeDiff",
    "OpsComparison",
    "PooledComparison",
    "SessionValidity",
]

AB_SCHEMA = "edgeship.ab/1.2"
AB_SCHEMA_MAJOR = "edgeship.ab/1"
"""What a report is read as: this major version and every minor revision of it."""

UNSTABLE_SHARE = 0.1
"""A device's measurement is unstable when more than this share of its sessions is (one
disturbed session among ten moves the test by one rank; two or more are a pattern)."""

FASTER = "faster"
SLOWER = "slower"
NO_DIFFERENCE = "no significant difference"
VERDICTS = (FASTER, SLOWER, NO_DIFFERENCE)


@dataclass
class LatencySummary:
    n: int
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class MemorySummary:
    """Measured in a fresh runtime process per model, so no model hides another's pages."""

    peak_rss_mb: float
    load_delta_mb: float
    rss_after_load_mb: float
    method: str


@dataclass
class Accuracy:
    """Top-1 accuracy (a fraction) on the data set's labels, with a Wilson interval."""

    accuracy: float
    ci: Interval
    n: int


@dataclass
class Agreement:
    """A variant's outputs against the base's on the same data: the figures of the first
    output of each, and ``outputs``, a verdict for every output (each part of a packed
    one) judged by its kind (:mod:`edgeship.models.kinds`)."""

    top1: float
    top1_ci: Interval
    max_abs_diff: float
    cosine_mean: float
    cosine_min: float
    n: int
    outputs: list[OutputVerdict] = field(default_factory=list)


@dataclass
class ModelResult:
    """One model on one device. ``samples_ms`` are every timed run in run order, session
    after session (``session_runs`` runs in each: whole rounds of ``design.block``);
    ``session_medians_ms`` are the test's units and ``session_spread`` their spread (the
    standard deviation of their logs: 0.01 is about 1 %), the figure the detectable
    change rests on. ``inputs``: the arrays every timed run was fed (given with
    ``--inputs`` or generated), by the model's input names."""

    name: str
    role: str
    path: str
    sha256: str
    format: str
    size_bytes: int
    backend: BackendUsage
    latency: LatencySummary
    session_medians_ms: list[float]
    samples_ms: list[float]
    memory: Optional[MemorySummary] = None
    accuracy: Optional[Accuracy] = None
    ops: Optional[OpProfile] = None
    inputs: list[TensorSummary] = field(default_factory=list)
    session_runs: list[int] = field(default_factory=list)
    session_spread: Optional[float] = None


@dataclass
class Comparison:
    """A variant against the base: latency (test and interval), memory, size, quality.

    ``latency_ratio``: the geometric mean of the session ratios (variant median over
    base median, both timed in the same session); ``p_value``: the two-sided Wilcoxon
    signed-rank test of the log session ratios, ``prob_slower`` the share of sessions in
    which the variant was the slower. ``p_value_holm``: ``p_value`` corrected over the
    report's variants (Holm), the one ``verdict`` rests on. ``ratio_spread``: the
    standard deviation of the log session ratios (0.01: about 1 %), and
    ``min_detectable_change`` the smallest relative change of the median (0.03: 3 %) the
    test would detect with 80 % power at alpha / variants at that spread; None when
    these sessions cannot show any difference.
    """

    variant: str
    latency_ratio: float
    latency_ratio_ci: Interval
    speedup: float
    speedup_ci: Interval
    p_value: float
    prob_slower: float
    verdict: str
    size_ratio: float
    memory_ratio: Optional[float] = None
    accuracy_drop_pp: Optional[float] = None
    agreement: Optional[Agreement] = None
    p_value_holm: Optional[float] = None
    min_detectable_change: Optional[float] = None
    ratio_spread: Optional[float] = None


@dataclass
class OpTypeDiff:
    """One op type in the base and in a variant: the sum of its nodes' medians (0 where
    the model has no such node), its share of the model's operator time (a fraction) and
    its node count (0: the model has none)."""

    op_type: str
    base_ms: float
    variant_ms: float
    delta_ms: float
    base_share: Optional[float] = None
    variant_share: Optional[float] = None
    base_nodes: Optional[int] = None
    variant_nodes: Optional[int] = None


@dataclass
class OpsComparison:
    """Where a variant's time goes against the base's, per op type (``--ops``); the
    largest change first. ``note``: why there is none (a backend without per-op times)."""

    variant: str
    base_ops_ms: Optional[float] = None
    variant_ops_ms: Optional[float] = None
    rows: list[OpTypeDiff] = field(default_factory=list)
    note: Optional[str] = None


@dataclass
class Conditions:
    """The device's hottest thermal zone and CPU clock at one moment (None: unreadable);
    ``device``: its full state then (CPU governors, clocks, throttle counts, a Pi's
    throttled bits, the runtime's preemptions), None in a file or from a runtime older
    than that."""

    temperature_c: Optional[float] = None
    cpu_freq_mhz: Optional[float] = None
    device: Optional[DeviceState] = None


@dataclass
class SessionValidity:
    """The validity verdict on one session's interleaved window (``stable`` or
    ``unstable``), with its reasons; a reason about one model names it. ``causes``: per
    model, the causes of its unstable verdict (keys of ``edgeship_runtime.guards.CAUSES``).
    ``models``: each model's own verdict (a model the runtime gave none is missing);
    ``warmup_runs``: the
    untimed runs of each model before the window; ``before``/``after``: the device around
    the window. The runtime judges the CPU governor and throttle counters on the window
    itself: a governor other than ``performance`` or a throttle event is a reason."""

    session: int
    verdict: str
    reasons: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    warmup_runs: Optional[int] = None
    before: Optional[Conditions] = None
    after: Optional[Conditions] = None
    causes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class DeviceAB:
    target: dict[str, Any]
    models: list[ModelResult]
    comparisons: list[Comparison]
    pareto_front: list[str]
    rounds: list[list[str]]
    before: Conditions
    after: Conditions
    wall_s: float
    environment: Optional[Environment] = None
    validity: list[SessionValidity] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    op_diffs: list[OpsComparison] = field(default_factory=list)
    plan: Optional[str] = None
    """With ``design.precision``: how many sessions the first ones' spread called for."""
    stable: Optional[bool] = None
    """Whether the measurement can be trusted: at most :data:`UNSTABLE_SHARE` of the
    sessions unstable (None: the runtime judged none)."""

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.name == name)


@dataclass
class PooledComparison:
    """A variant against the base over several devices: the geometric mean of the
    per-device ratios, a stratified bootstrap interval, the signed-rank test of every
    device's session ratios together."""

    variant: str
    devices: list[str]
    latency_ratio: float
    latency_ratio_ci: Interval
    speedup: float
    speedup_ci: Interval
    p_value: float
    verdict: str
    p_value_holm: Optional[float] = None


@dataclass
class Design:
    """How it was measured and tested; enough to rerun it."""

    runs: int
    sessions: int
    rounds: int
    block: int
    warmup: int
    seed: int
    alpha: float
    confidence: float
    bootstrap: int
    threads: int
    test: str = (
        "two-sided Wilcoxon signed-rank on the log session ratios (variant median over base "
        "median, timed in the same session), Holm-corrected across variants"
    )
    interval: str = (
        "expanded percentile bootstrap over sessions of the geometric mean of the session ratios"
    )
    min_seconds: Optional[float] = None
    """Timed running per model and session (rounds go on until each model has it)."""
    precision: Optional[float] = None
    """The detectable change the sessions were planned for (``--precision``)."""
    cpus: list[int] = field(default_factory=list)


@dataclass
class GateResult:
    """One gate for one variant on one device. ``margin`` is in the gate's unit: how far
    inside the threshold (positive) or beyond it (negative, the amount it failed by)."""

    gate: str
    target: str
    variant: str
    threshold: float
    unit: str
    passed: bool
    observed: Optional[float] = None
    margin: Optional[float] = None
    message: str = ""


@dataclass
class DeviceFailure:
    target: str
    type: str
    message: str


@dataclass
class ABReport(JsonRecord):
    base: str
    variants: list[str]
    design: Design
    devices: list[DeviceAB]
    created_at: str
    pooled: list[PooledComparison] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    failures: list[DeviceFailure] = field(default_factory=list)
    passed: bool = True
    stable: Optional[bool] = None
    """Whether every device's measurement was stable (None: no device was judged)."""
    caveat: Optional[str] = None
    """What a verdict rests on that cannot be trusted (an unstable measurement), said on
    the verdict's line in every view."""
    schema: str = AB_SCHEMA

    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ABReport:
        """Any ``edgeship.ab/1`` revision (a 1.0 file too, with what it lacks empty)."""
        check_schema(data, AB_SCHEMA_MAJOR)
        return from_jsonable(cls, data)
