"""The compression report: what was done and what it cost, as data (``edgeship.compression/2.3``).

:class:`CompressionReport` is the typed JSON record of one produced model;
:class:`CompressionResult` is what :func:`~edgeship.compress.compress` returns: the file
and its report. The top-level fidelity figures (:class:`edgeship.models.fidelity.Fidelity`)
are the first output's, kept for the readers of schema 1; every output's (and packed
part's) verdict is in ``outputs`` (:class:`~edgeship.models.kinds.OutputVerdict`), every
change of an input's or output's dtype or shape in ``interface``
(:class:`~edgeship.models.interface.InterfaceChange`). Schema 1 reports (without either)
still read, and every revision of schema 2: 2.1 added each share's Wilson interval
(``fidelity.top1_agreement_ci``, ``accuracy_ci``, ``base_accuracy_ci``; an output's
``samples`` and ``intervals``), which a 2.0 file's figures and sample count give again;
2.2 added each interleaved round's p50 of both models (``latency.base_rounds_ms``,
``latency.model_rounds_ms``; empty in older files); 2.3 the smallest slowdown the guard
resolves at the spread of those rounds (``latency.detectable_slowdown``; null in older
files and under two rounds).

Sizes are bytes, latencies milliseconds, accuracies fractions in [0, 1] and accuracy drops
percentage points. ``compressed_size_bytes`` is the file deflated (zlib level 6): zeros of a
pruned model cost nothing there, unlike on the raw file.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeship.models.fidelity import Fidelity
from edgeship.models.interface import InterfaceChange
from edgeship.models.kinds import OutputVerdict
from edgeship.models.stats import ModelStats
from edgeship_runtime.signature import format_dims

__all__ = [
    "SCHEMA",
    "SCHEMA_MAJOR",
    "CompressionReport",
    "CompressionResult",
    "Fidelity",
    "InterfaceChange",
    "Latency",
    "ModelStats",
    "OutputVerdict",
    "speed_text",
]

SCHEMA = "edgeship.compression/2.3"
SCHEMA_MAJOR = "edgeship.compression/2"
"""What a report is read as: this major version and every minor revision of it (and 1)."""
_OLDER = "edgeship.compression/1"


def shapes_text(shapes: Mapping[str, Sequence[int]]) -> str:
    """``x 1×1×8×8, mask 1×16``: the shapes a latency was measured on."""
    return ", ".join(f"{n} {format_dims(s)}" for n, s in shapes.items())


def speed_text(speedup: float) -> str:
    """``2.10× faster`` or ``3.20× slower``: a slowdown never reads as "0.31× faster"."""
    if speedup <= 0:
        return "n/a"
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


@dataclass
class Latency:
    """Median batch-1 latency of both models on ``target``, measured interleaved, on
    inputs of ``input_shapes`` (by name); ``base_rounds_ms`` and ``model_rounds_ms``: each
    round's p50, paired by round (a fresh session each: at tens of microseconds, sessions
    differ by more than a round's runs do); ``detectable_slowdown``: the smallest slowdown
    the guard refuses at the spread of these rounds (:func:`.guard.detectable_slowdown`)."""

    target: str
    threads: int
    base_p50_ms: float
    model_p50_ms: float
    rounds: int
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    base_rounds_ms: list[float] = field(default_factory=list)
    model_rounds_ms: list[float] = field(default_factory=list)
    detectable_slowdown: float | None = None

    @classmethod
    def of_rounds(
        cls,
        target: str,
        threads: int,
        base_rounds_ms: Sequence[float],
        model_rounds_ms: Sequence[float],
        input_shapes: Mapping[str, Sequence[int]],
    ) -> Latency:
        """The medians of paired rounds."""
        return cls(
            target=target,
            threads=threads,
            base_p50_ms=float(statistics.median(base_rounds_ms)),
            model_p50_ms=float(statistics.median(model_rounds_ms)),
            rounds=len(base_rounds_ms),
            input_shapes={k: list(v) for k, v in input_shapes.items()},
            base_rounds_ms=[float(v) for v in base_rounds_ms],
            model_rounds_ms=[float(v) for v in model_rounds_ms],
        )

    def extended(self, more: Latency) -> Latency:
        """This measurement and ``more`` rounds of the same models, as one."""
        return Latency.of_rounds(
            self.target,
            self.threads,
            self.base_rounds_ms + more.base_rounds_ms,
            self.model_rounds_ms + more.model_rounds_ms,
            self.input_shapes,
        )

    @property
    def speedup(self) -> float:
        return self.base_p50_ms / self.model_p50_ms if self.model_p50_ms > 0 else 0.0

    @property
    def round_spread(self) -> float | None:
        """The standard deviation of the logs of the per-round ratios (model / base);
        None under two rounds."""
        pairs = zip(self.base_rounds_ms, self.model_rounds_ms, strict=True)
        logs = [math.log(m / b) for b, m in pairs if b > 0 and m > 0]
        return statistics.stdev(logs) if len(logs) >= 2 else None

    @property
    def rounds_slower(self) -> int:
        """In how many paired rounds the model ran slower than its base."""
        return sum(m > b for b, m in zip(self.base_rounds_ms, self.model_rounds_ms, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": round(self.speedup, 4)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Latency:
        return cls(
            target=str(data["target"]),
            threads=int(data["threads"]),
            base_p50_ms=float(data["base_p50_ms"]),
            model_p50_ms=float(data["model_p50_ms"]),
            rounds=int(data["rounds"]),
            input_shapes={k: list(v) for k, v in data.get("input_shapes", {}).items()},
            base_rounds_ms=[float(v) for v in data.get("base_rounds_ms", [])],
            model_rounds_ms=[float(v) for v in data.get("model_rounds_ms", [])],
            detectable_slowdown=data.get("detectable_slowdown"),
        )


@dataclass
class CompressionReport:
    """One compression: method and parameters, base and result, fidelity, notes.

    ``details`` is method-specific (quantized nodes, pruned layers with channel counts,
    attention layers with the heads before, after and removed, layers left alone and why,
    training history); ``steps`` holds a chain's own records.
    ``evaluation`` says which inputs ``fidelity`` was measured on (held-out data, never the
    data the method calibrated or trained on, or inputs generated at the model's shape);
    ``degraded`` is the collapse that ``allow_degraded`` let through ("" for none);
    ``outputs`` the verdict of each output (each part of a packed one); ``interface`` each
    input or output whose dtype or shape changed.
    """

    method: str
    parameters: dict[str, Any]
    base: ModelStats
    model: ModelStats
    fidelity: Fidelity | None = None
    latency: Latency | None = None
    verified_on: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    steps: list[CompressionReport] = field(default_factory=list)
    evaluation: str = ""
    degraded: str = ""
    outputs: list[OutputVerdict] = field(default_factory=list)
    interface: list[InterfaceChange] = field(default_factory=list)
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "method": self.method,
            "parameters": self.parameters,
            "base": self.base.to_dict(),
            "model": self.model.to_dict(),
            "fidelity": None if self.fidelity is None else self.fidelity.to_dict(),
            "latency": None if self.latency is None else self.latency.to_dict(),
            "verified_on": self.verified_on,
            "seconds": self.seconds,
            "details": self.details,
            "notes": list(self.notes),
            "steps": [s.to_dict() for s in self.steps],
            "evaluation": self.evaluation,
            "degraded": self.degraded,
            "outputs": [v.to_dict() for v in self.outputs],
            "interface": [c.to_dict() for c in self.interface],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressionReport:
        schema = str(data.get("schema"))
        if schema not in (_OLDER, SCHEMA_MAJOR) and not schema.startswith(SCHEMA_MAJOR + "."):
            raise ValueError(f"not a compression report of schema {SCHEMA}: {data.get('schema')}")
        fid, lat = data.get("fidelity"), data.get("latency")
        return cls(
            method=str(data["method"]),
            parameters=dict(data["parameters"]),
            base=ModelStats.from_dict(data["base"]),
            model=ModelStats.from_dict(data["model"]),
            fidelity=None if fid is None else Fidelity.from_dict(fid),
            latency=None if lat is None else Latency.from_dict(lat),
            verified_on=str(data.get("verified_on", "")),
            seconds=float(data.get("seconds", 0.0)),
            details=dict(data.get("details", {})),
            notes=[str(n) for n in data.get("notes", [])],
            steps=[cls.from_dict(s) for s in data.get("steps", [])],
            evaluation=str(data.get("evaluation", "")),
            degraded=str(data.get("degraded", "")),
            outputs=[OutputVerdict.from_dict(v) for v in data.get("outputs", [])],
            interface=[InterfaceChange.from_dict(c) for c in data.get("interface", [])],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> CompressionReport:
        return cls.from_dict(json.loads(text))


@dataclass
class CompressionResult:
    """What :func:`~edgeship.compress.compress` returns: the produced model and its report."""

    path: Path
    report: CompressionReport
