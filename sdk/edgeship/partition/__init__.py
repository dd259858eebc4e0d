"""Graph partitioning (``edgeship partition``): K sequential ONNX stages balanced by cost,
verified to reproduce the model, described by a manifest the pipeline runner reads."""

from __future__ import annotations

from edgeship.partition._balance import balanced_cuts, bottleneck, stage_costs
from edgeship.partition._manifest import (
    MANIFEST_NAME,
    PARTITION_SCHEMA,
    PartitionManifest,
    StageEntry,
)
from edgeship.partition._split import PartitionConfig, partition

__all__ = [
    "MANIFEST_NAME",
    "PARTITION_SCHEMA",
    "PartitionConfig",
    "PartitionManifest",
    "StageEntry",
    "balanced_cuts",
    "bottleneck",
    "partition",
    "stage_costs",
]
