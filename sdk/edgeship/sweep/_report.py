"""The sweep's records and report: typed dataclasses that round-trip to versioned JSON.

Three schemas, one per file a sweep writes (see :mod:`.store`):

- ``edgeship.sweep-variant/1.1`` (:class:`VariantRecord`): one variant made (or not).
- ``edgeship.sweep-cell/1.1`` (:class:`CellRecord`): one variant measured on one board, with
  the whole ``edgeship.ab/1`` report of that A/B against the base.
- ``edgeship.sweep/1.1`` (:class:`SweepReport`): every variant and cell of the sweep, the
  Pareto front on each board and across boards.

Units are in the field names (``*_ms`` milliseconds, ``*_mb`` MiB, ``*_bytes`` bytes,
``*_pp`` percentage points); ``speedup`` is the base's median latency over the variant's
(above 1: faster); accuracies are fractions. The report is the same whichever executor
ran the sweep (``executor`` names it); the Markdown table is a view over it
(:mod:`.view`).
"""

# serde rebuilds Optional fields from typing.Optional (not from ``X | None``), so keep it.
# ruff: noqa: UP045

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from edgeship.ab.result import Interval
from edgeship_runtime.serde import JsonRecord

__all__ = [
    "CELL_SCHEMA",
    "DONE",
    "FAILED",
    "SWEEP_SCHEMA",
    "VARIANT_SCHEMA",
    "AcrossBoards",
    "BoardFront",
    "Cell",
    "CellRecord",
    "CellResult",
    "ErrorInfo",
    "FleetFront",
    "Policy",
    "RunCounts",
    "SweepReport",
    "VariantRecord",
]

SWEEP_SCHEMA = "edgeship.sweep/1.1"
VARIANT_SCHEMA = "edgeship.sweep-variant/1.1"
CELL_SCHEMA = "edgeship.sweep-cell/1.1"
"""1.1 of each added the samples accuracy and agreement were judged on and their Wilson
intervals (``samples``, ``*_ci``); a 1.0 file reads, without them."""

DONE = "done"
FAILED = "failed"


@dataclass
class ErrorInfo:
    """What went wrong: the error's class name and its message."""

    type: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        return cls(type(exc).__name__, " ".join(str(exc).split()))


@dataclass
class VariantRecord(JsonRecord):
    """One variant: made from the base as its recipe entry says, checked on the host.

    ``path`` is relative to the sweep's directory; ``accuracy`` (against labels) and
    ``top1_agreement`` (against the base) are the compression's own figures on ``--data``
    (on the host), over ``samples`` with their 95 % Wilson intervals (``*_ci``);
    ``cpus``/``gpus`` what its task declared; ``worker`` where it ran (host name, process
    id).
    """

    name: str
    method: str
    fingerprint: str
    status: str
    path: str = ""
    sha256: str = ""
    size_bytes: int = 0
    parameters: int = 0
    sparsity: float = 0.0
    accuracy: Optional[float] = None
    top1_agreement: Optional[float] = None
    compress_s: float = 0.0
    cpus: float = 1.0
    gpus: float = 0.0
    worker: str = ""
    error: Optional[ErrorInfo] = None
    samples: Optional[int] = None
    accuracy_ci: Optional[Interval] = None
    top1_agreement_ci: Optional[Interval] = None
    schema: str = VARIANT_SCHEMA

    @property
    def ok(self) -> bool:
        return self.status == DONE


@dataclass
class CellResult:
    """A variant against the base on one board, from their A/B (interleaved sessions).

    ``speedup_ci``: the A/B's interval at its confidence; ``verdict``: faster, slower or no
    significant difference. Memory (peak RSS in a fresh runtime per model) and accuracy
    (against the labels of ``--eval-data``, on the board) are None when not measured;
    ``top1_agreement`` is against the base on the same data; the shares are over
    ``samples``, with their intervals at the A/B's confidence (``*_ci``).
    """

    p50_ms: float
    p90_ms: float
    base_p50_ms: float
    speedup: float
    speedup_ci: Interval
    verdict: str
    size_bytes: int
    base_size_bytes: int
    backend: str
    peak_rss_mb: Optional[float] = None
    base_peak_rss_mb: Optional[float] = None
    memory_ratio: Optional[float] = None
    accuracy: Optional[float] = None
    base_accuracy: Optional[float] = None
    accuracy_drop_pp: Optional[float] = None
    top1_agreement: Optional[float] = None
    samples: Optional[int] = None
    accuracy_ci: Optional[Interval] = None
    base_accuracy_ci: Optional[Interval] = None
    top1_agreement_ci: Optional[Interval] = None


@dataclass
class Cell:
    """One variant on one board: ``done`` with its result, or ``failed`` with its error.
    ``file``: its record, relative to the sweep's directory ("" when none was written:
    the variant itself could not be made)."""

    variant: str
    board: str
    status: str
    result: Optional[CellResult] = None
    error: Optional[ErrorInfo] = None
    wall_s: float = 0.0
    file: str = ""

    @property
    def ok(self) -> bool:
        return self.status == DONE


@dataclass
class CellRecord(JsonRecord):
    """What the sweep stores per cell: the cell, what it was measured from
    (``fingerprint``), when, where, and the full A/B report (``edgeship.ab/1``)."""

    cell: Cell
    fingerprint: str
    finished_at: str
    worker: str = ""
    ab: Optional[dict[str, Any]] = None
    schema: str = CELL_SCHEMA


@dataclass
class BoardFront:
    """The Pareto front on one board over its done cells and the base: latency, size,
    and memory and on-device accuracy when every point has them (``objectives``)."""

    board: str
    objectives: list[str]
    front: list[str]
    base_p50_ms: Optional[float] = None
    done: int = 0
    failed: int = 0


@dataclass
class AcrossBoards:
    """One variant over the boards where it was measured: the geometric mean of its
    speedups (and their range), memory ratio and mean accuracy drop."""

    variant: str
    boards: int
    speedup_geomean: float
    speedup_min: float
    speedup_max: float
    size_bytes: int
    memory_ratio_geomean: Optional[float] = None
    accuracy_drop_pp_mean: Optional[float] = None


@dataclass
class FleetFront:
    """The Pareto front across boards over the variants measured on every board that has
    any result (``excluded``: the others, which a mean over fewer boards would flatter),
    and the base (speedup 1)."""

    objectives: list[str]
    points: list[AcrossBoards]
    front: list[str]
    excluded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    """How every cell is measured (part of each cell's fingerprint): the A/B's schedule
    (``sessions`` fresh loads, each timing every model for ``min_seconds`` and at least
    ``runs`` timed runs per model in all, in blocks of ``block``, after ``warmup``),
    runtime ``threads``, and peak memory over ``memory_runs`` runs in a fresh runtime per
    model when ``memory``."""

    runs: int = 200
    sessions: int = 6
    block: int = 10
    warmup: int = 10
    seed: int = 0
    threads: int = 1
    memory: bool = True
    memory_runs: int = 20
    min_seconds: float = 0.25


@dataclass
class RunCounts:
    """This run's share of the work: what it made and measured, what it found done."""

    compressed: int = 0
    variants_reused: int = 0
    measured: int = 0
    cells_reused: int = 0
    wall_s: float = 0.0


@dataclass
class SweepReport(JsonRecord):
    model: str
    model_sha256: str
    recipe: str
    executor: str
    policy: Policy
    boards: list[str]
    variants: list[VariantRecord]
    cells: list[Cell]
    fronts: list[BoardFront]
    across: FleetFront
    run: RunCounts
    created_at: str
    eval_data: Optional[str] = None
    complete: bool = False
    schema: str = SWEEP_SCHEMA

    def cell(self, variant: str, board: str) -> Cell:
        return next(c for c in self.cells if c.variant == variant and c.board == board)

    def failed(self) -> list[Cell]:
        return [c for c in self.cells if not c.ok]
