"""The profile report: typed dataclasses that round-trip to versioned JSON.

Schema ``edgeship.report/1``. Units are in the field names' parents: everything under
``latency_ms`` is milliseconds, under ``memory_mb`` mebibytes (2**20 bytes).
A reader accepts any ``edgeship.report/1.x`` and ignores fields it does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import ProtocolError
from .serde import from_jsonable, to_jsonable

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
class ProfileReport:
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
    schema: str = REPORT_SCHEMA

    def to_dict(self) -> Dict[str, Any]:
        return to_jsonable(self)

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ProfileReport:
        check_schema(data, REPORT_SCHEMA)
        return from_jsonable(cls, data)

    @classmethod
    def from_json(cls, text: str) -> ProfileReport:
        return cls.from_dict(json.loads(text))


def check_schema(data: Dict[str, Any], expected: str) -> None:
    """Accept ``expected`` and its minor revisions (``edgeship.report/1.2``), nothing else."""
    schema = str(data.get("schema", ""))
    if schema != expected and not schema.startswith(expected + "."):
        raise ProtocolError(f"unsupported schema {schema or '(none)'!r}, expected {expected!r}")
