"""The partition manifest (``DIR/manifest.json``): the stages in order, for the pipeline runner.

Schema ``edgeship.partition/1``::

    {"schema": "edgeship.partition/1",
     "source": {"path", "format", "sha256", "size_bytes"},
     "cost_model": "flops" | "profile", "cost_unit": "flop" | "us",
     "inputs": [...], "outputs": [...],           # the source model's, in order
     "stages": [{"index", "file", "inputs", "outputs", "passthrough",
                 "nodes", "cost", "cost_share", "sha256", "size_bytes"}, ...],
     "verification": {...}}                        # the chain against the source

``stages[0].inputs`` are the model's inputs; ``stages[s].inputs == stages[s-1].outputs``;
the last stage's outputs are the model's outputs. ``file`` is relative to the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgeship.models.ref import ModelRef
from edgeship.models.verify import VerifyReport
from edgeship_runtime.serde import JsonRecord

__all__ = ["MANIFEST_NAME", "PARTITION_SCHEMA", "PartitionManifest", "StageEntry"]

PARTITION_SCHEMA = "edgeship.partition/1"
MANIFEST_NAME = "manifest.json"


@dataclass
class StageEntry:
    index: int
    file: str
    inputs: list[str]
    outputs: list[str]
    passthrough: list[str]
    nodes: int
    cost: float
    cost_share: float
    sha256: str = ""
    size_bytes: int = 0


@dataclass
class PartitionManifest(JsonRecord):
    source: ModelRef
    cost_model: str
    cost_unit: str
    inputs: list[str]
    outputs: list[str]
    stages: list[StageEntry] = field(default_factory=list)
    verification: VerifyReport = field(
        default_factory=lambda: VerifyReport(samples=0, data="", tolerance={})
    )
    crossing_bytes: list[float] = field(default_factory=list)
    schema: str = PARTITION_SCHEMA

    @classmethod
    def load(cls, directory: Path) -> PartitionManifest:
        return cls.from_dict(json.loads((Path(directory) / MANIFEST_NAME).read_text()))

    def stage_paths(self, directory: Path) -> list[Path]:
        return [Path(directory) / s.file for s in self.stages]

    def imbalance(self) -> float:
        """Largest stage cost over the mean (1.0 is perfectly balanced)."""
        costs = [s.cost for s in self.stages]
        mean = sum(costs) / len(costs) if costs else 0.0
        return max(costs) / mean if mean > 0 else 1.0
