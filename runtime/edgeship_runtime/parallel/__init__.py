"""Sharded inference on one device: data-parallel shards and pipeline stages.

::

    parent (the runtime)                      workers (spawned, one session each)
    ────────────────────                      ──────────────────────────────────
    ShardPool:  requests ─┬─ slots ─▶ shard 0 (cores {0}) ─┐
                          └─ slots ─▶ shard 1 (cores {1}) ─┴─▶ results, in order
    Pipeline:   requests ── slots ─▶ stage 0 ─▶ stage 1 ─▶ ... ─▶ results, in order

Modules: :mod:`.shm` (the shared-memory slots), :mod:`.affinity` (core plans, pinning,
dying with the parent), :mod:`.worker` (the worker process), :mod:`.group` (starting,
watching and stopping workers), :mod:`.stream` (the parent's dispatch loop),
:mod:`.shards` and :mod:`.pipeline` (the two layouts), :mod:`.profiling` (their profile
reports and the ``run`` operation's sharded path).

Standard library and numpy only, Python 3.9+; workers start with the ``spawn`` method.
"""

from __future__ import annotations

from .affinity import plan_cpus, suggest_shards, usable_cpus
from .group import WorkerCrashed, WorkerSpec
from .pipeline import PartitionPlan, Pipeline, read_manifest, wire
from .shards import ShardPool
from .shm import SHM_PREFIX
from .stream import StreamResult

__all__ = [
    "SHM_PREFIX",
    "PartitionPlan",
    "Pipeline",
    "ShardPool",
    "StreamResult",
    "WorkerCrashed",
    "WorkerSpec",
    "plan_cpus",
    "read_manifest",
    "suggest_shards",
    "usable_cpus",
    "wire",
]
