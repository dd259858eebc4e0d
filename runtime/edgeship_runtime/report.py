"""The profile report: typed dataclasses that round-trip to versioned JSON.

Schema ``edgeship.report/1``. Units are in the field names' parents: everything under
``latency_ms`` is milliseconds, under ``memory_mb`` mebibytes (2**20 bytes).
A reader accepts any ``edgeship.report/1.x`` and ignores fields it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .serde import JsonRecord

REPORT_SCHEMA = "edgeship.report/1"


@dataclass
class ModelInfo:
    path: str
    sha256: str
    format: str
    size_bytes: int


@dataclass
class BackendUsage:
    """The backend a model ran with: ``providers``/``delegates`` are those that really ran
    (the session's own account); ``providers_not_run``: execution providers asked for that
    did not (absent, or failed to start: the figures are then those of ``providers``)."""

    name: str
    version: str
    threads: int
    providers: List[str] = field(default_factory=list)
    delegates: List[str] = field(default_factory=list)
    providers_not_run: List[str] = field(default_factory=list)


@dataclass
class LatencyStats:
    """Statistics of single runs, in ms: ``n`` runs, their mean and sample standard
    deviation (``std``: of single runs; the validity verdict judges the spread of means
    of consecutive runs instead, and says so), min, percentiles and max."""

    n: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float


@dataclass
class MemoryStats:
    rss_before_load: float
    rss_after_load: float
    peak_rss: float
    load_delta: float
    method: str


@dataclass
class Environment:
    hostname: str
    arch: str
    cpu_model: str
    logical_cores: int
    usable_cores: int
    total_memory_mb: float
    os: str
    python: str
    board: Optional[str] = None
    cpu_governor: Optional[str] = None
    cpu_freq_mhz: Optional[float] = None
    temperature_c: Optional[float] = None
    thermal_zones: Dict[str, float] = field(default_factory=dict)


@dataclass
class TensorSummary:
    name: str
    shape: List[int]
    dtype: str
    all_finite: Optional[bool] = None


@dataclass
class PolicyRecord:
    """How a profile was asked to measure: at least ``warmup`` untimed runs (more until
    the median settled, with ``steady``), then at least ``runs`` timed runs and at least
    ``min_seconds`` of timed running; ``cpus``: the CPUs it was pinned to (empty: none).
    What the window really held is ``latency_ms.n`` and the validity's ``warmup_runs``."""

    warmup: int
    runs: int
    min_seconds: float
    timer: str = "time.perf_counter_ns"
    steady: Optional[bool] = None
    cpus: List[int] = field(default_factory=list)


@dataclass
class WorkerReport:
    """One worker of a sharded or pipelined profile (a shard, or a pipeline stage).

    ``latency_ms``: its time inside the backend call per request; ``queue_ms``: how long
    each request waited for it (from the hand-over, or the previous stage's end, to its
    start); ``utilisation``: its busy time over the stream's wall time (0..1).
    """

    index: int
    role: str
    model_path: str
    pid: int
    cpus: List[int]
    backend: BackendUsage
    load_ms: float
    requests: int
    busy_s: float
    utilisation: float
    latency_ms: Optional[LatencyStats] = None
    queue_ms: Optional[LatencyStats] = None
    peak_rss_mb: Optional[float] = None


@dataclass
class ParallelBaseline:
    """What the parallel run is compared with, measured in the same profile."""

    description: str
    requests: int
    wall_s: float
    throughput_rps: float


@dataclass
class ParallelCheck:
    """Outputs of the parallel run against the reference run, request by request."""

    reference: str
    requests: int
    max_abs_diff: Optional[float]
    rtol: float
    atol: float
    ok: bool


@dataclass
class ParallelReport:
    """The optional ``parallel`` section of a profile (``--shards N`` or ``--pipeline DIR``).

    A stream of ``requests`` requests of ``request_batch`` samples each, fed continuously.
    ``throughput_rps`` counts requests per second of wall time, ``throughput_ips`` samples.
    ``queue_ms`` is a request's total waiting inside the pool (hand-over to start, summed
    over stages), ``end_to_end_ms`` hand-over to result collected. ``scaling_efficiency``
    is throughput over (workers × the one-shard throughput), ``speedup`` throughput over
    the baseline's.
    """

    mode: str
    n_workers: int
    request_batch: int
    requests: int
    wall_s: float
    throughput_rps: float
    throughput_ips: float
    queue_ms: LatencyStats
    end_to_end_ms: LatencyStats
    workers: List[WorkerReport] = field(default_factory=list)
    baseline: Optional[ParallelBaseline] = None
    speedup: Optional[float] = None
    scaling_efficiency: Optional[float] = None
    check: Optional[ParallelCheck] = None
    transport: str = "multiprocessing.shared_memory"
    start_method: str = "spawn"
    total_peak_rss_mb: Optional[float] = None


@dataclass
class DeviceState:
    """The clock and heat of the device at one moment, read from ``/sys`` (and, where they
    exist, ``vcgencmd`` and ``nvpmodel``); an empty map or None wherever unreadable.

    Per-CPU maps are keyed ``cpu0``, ``cpu1``... over the CPUs this process may run on.
    ``throttle_counts``: the kernel's ``thermal_throttle/*_count`` per CPU (x86);
    ``rpi_throttled``: the bits of ``vcgencmd get_throttled`` (Raspberry Pi);
    ``devfreq_mhz``: devfreq devices' current clock (a Jetson's GPU and memory, Mali GPUs).
    ``preemptions``, ``run_delay_s`` and ``at_s`` are about the runtime process, not the board.
    """

    temperature_c: Optional[float] = None
    thermal_zones: Dict[str, float] = field(default_factory=dict)
    governors: List[str] = field(default_factory=list)
    cur_freq_mhz: Dict[str, float] = field(default_factory=dict)
    max_freq_mhz: Dict[str, float] = field(default_factory=dict)
    hw_max_freq_mhz: Dict[str, float] = field(default_factory=dict)
    throttle_counts: Dict[str, int] = field(default_factory=dict)
    rpi_throttled: Optional[int] = None
    jetson_power_mode: Optional[str] = None
    devfreq_mhz: Dict[str, float] = field(default_factory=dict)
    preemptions: Optional[int] = None
    """The runtime process's involuntary context switches so far (``getrusage``): each
    one a moment another process took its CPU."""
    run_delay_s: Optional[float] = None
    """Seconds the runtime's threads have waited for a CPU so far (their run-queue delay,
    ``/proc/self/task/*/schedstat``)."""
    steal_s: Optional[float] = None
    """Seconds of steal time so far per CPU the runtime may use, their mean (``/proc/stat``:
    the hypervisor running other guests)."""
    at_s: Optional[float] = None
    """When it was read (a monotonic clock, seconds): for rates between two snapshots."""

    def cpu_wait_since(self, before: DeviceState) -> Optional[Tuple[float, float]]:
        """(seconds the runtime's threads waited for a CPU, seconds of window) between
        ``before`` and this snapshot; None where either is unread or the window is empty."""
        if None in (self.run_delay_s, before.run_delay_s, self.at_s, before.at_s):
            return None
        window = self.at_s - before.at_s  # type: ignore[operator]
        if window <= 0:
            return None
        return max(self.run_delay_s - before.run_delay_s, 0.0), window  # type: ignore[operator]


@dataclass
class Cooldown:
    """A wait before timing until the hottest thermal zone was below ``below_c`` (°C).
    ``reached`` is None where no thermal zone is readable (nothing was waited for)."""

    below_c: float
    timeout_s: float
    waited_s: float
    start_c: Optional[float] = None
    end_c: Optional[float] = None
    reached: Optional[bool] = None


@dataclass
class Validity:
    """Whether a profile's figures can be trusted: ``verdict`` is ``stable`` or
    ``unstable``, with every reason; ``unchecked`` names what this device did not let us
    check (an unreadable governor is not taken as a good one).

    ``causes``: each reason's cause, in the order of ``reasons`` (``noise``,
    ``contention``, ``governor``, ``heat``, ``timer``, ``warmup``: see
    :data:`edgeship_runtime.guards.CAUSES` for their words and remedies);
    ``warmup_runs``: untimed runs before timing (the first inference included);
    ``warmup_settled``: whether the rolling median had settled by then (None: a fixed
    warm-up was asked for); ``clock_resolution_ns``: the smallest step of the timer,
    measured; ``before``/``after``: the device around the timed window.
    """

    verdict: str
    reasons: List[str] = field(default_factory=list)
    causes: List[str] = field(default_factory=list)
    unchecked: List[str] = field(default_factory=list)
    warmup_runs: int = 0
    warmup_settled: Optional[bool] = None
    clock_resolution_ns: Optional[float] = None
    before: Optional[DeviceState] = None
    after: Optional[DeviceState] = None
    cooldown: Optional[Cooldown] = None


@dataclass
class SensorReading:
    """One power sensor over the timed window. ``kind`` is ``counter`` (an energy counter
    read at both ends: RAPL ``energy_uj``, hwmon ``energy*_input``) or ``sampled`` (a
    power reading sampled every ``interval_s`` and integrated: hwmon ``power*_input``,
    INA3221 rails as voltage × current); ``scope`` says what it covers (a CPU package,
    a board rail), never only this process."""

    sensor: str
    kind: str
    source: str
    energy_mj: float
    average_w: float
    mj_per_inference: float
    samples: Optional[int] = None
    interval_s: Optional[float] = None


@dataclass
class EnergyReport:
    """Energy over the timed window (``window_s`` seconds, ``inferences`` runs), per sensor
    found; ``note`` says when there is none (``no power sensor``) or why one was skipped.
    Figures are measured, never estimated."""

    window_s: float
    inferences: int
    sensors: List[SensorReading] = field(default_factory=list)
    note: Optional[str] = None


@dataclass
class NodeTime:
    """One operator (graph node) in a per-operator profile: its time per run (the mean over
    the profile's central runs, see :class:`OpProfile`), its share of the operators'
    total, the execution provider (or delegate) that ran it and, where the profiler gives
    them, its tensor shapes."""

    name: str
    op_type: str
    time_ms: float
    share: float
    provider: Optional[str] = None
    input_shapes: List[List[int]] = field(default_factory=list)
    output_shapes: List[List[int]] = field(default_factory=list)


@dataclass
class OpTypeTime:
    """The nodes of one op type together: the sum of their times and of their shares."""

    op_type: str
    nodes: int
    total_ms: float
    share: float


@dataclass
class OpProfile:
    """Which operators take the time, measured in a profiling session of its own (opened
    beside the timed one, so the timed figures stay unaffected).

    One statistic for every figure: the mean over the profile's central runs, the middle
    half of its ``runs`` ranked by end-to-end time (``central_runs`` of them; an
    interquartile mean). Means add up where medians do not, so the nodes sum to their
    op type's ``total_ms``, the op types to ``ops_ms`` (the operators' summed time per
    run), and ``ops_ms + outside_ops_ms`` to ``profiled_ms`` (end-to-end with the
    profiler, ``perf_counter_ns`` around the call; outside the operators: binding,
    input/output copies, the executor, the profiler's own bookkeeping).
    ``session_ms``: the backend's own time per run (ONNX Runtime's ``model_run``);
    ``plain_ms``: the same statistic over the model's plain session, timed in turn with
    the profiled one, and ``profiler_overhead`` = profiled_ms / plain_ms - 1: how far
    operators plus outside stand from the time without the profiler. Where the backend
    exposes no per-operator timing, ``available`` is false and ``note`` says so.
    ``trace``: the profiler's Chrome trace events (load it in Perfetto), when asked for.
    """

    available: bool
    backend: str
    runs: int = 0
    central_runs: int = 0
    warmup: int = 0
    note: Optional[str] = None
    nodes: List[NodeTime] = field(default_factory=list)
    op_types: List[OpTypeTime] = field(default_factory=list)
    ops_ms: Optional[float] = None
    session_ms: Optional[float] = None
    profiled_ms: Optional[float] = None
    plain_ms: Optional[float] = None
    outside_ops_ms: Optional[float] = None
    profiler_overhead: Optional[float] = None
    trace: Optional[List[Dict[str, Any]]] = None


@dataclass
class ProfileReport(JsonRecord):
    model: ModelInfo
    backend: BackendUsage
    policy: PolicyRecord
    inputs: List[TensorSummary]
    batch_size: int
    load_ms: float
    first_inference_ms: float
    latency_ms: LatencyStats
    throughput_ips: float
    memory_mb: MemoryStats
    environment: Environment
    outputs: List[TensorSummary]
    runtime_version: str
    created_at: str
    samples_ms: Optional[List[float]] = None
    target: Optional[Dict[str, Any]] = None
    parallel: Optional[ParallelReport] = None
    validity: Optional[Validity] = None
    energy: Optional[EnergyReport] = None
    ops: Optional[OpProfile] = None
    schema: str = REPORT_SCHEMA
