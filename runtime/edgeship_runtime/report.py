"""The profile report: typed dataclasses that round-trip to versioned JSON.

Schema ``edgeship.report/1``. Units are in the field names' parents: everything under
``latency_ms`` is milliseconds, under ``memory_mb`` mebibytes (2**20 bytes).
A reader accepts any ``edgeship.report/1.x`` and ignores fields it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

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
    name: str
    version: str
    threads: int
    providers: List[str] = field(default_factory=list)
    delegates: List[str] = field(default_factory=list)


@dataclass
class LatencyStats:
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
    warmup: int
    runs: int
    min_seconds: float
    timer: str = "time.perf_counter_ns"


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
    schema: str = REPORT_SCHEMA
