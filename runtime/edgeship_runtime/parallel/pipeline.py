"""Pipeline shards: the stages of a partitioned model as a chain of processes.

``edgeship partition MODEL --stages K --out DIR`` writes ``DIR/manifest.json`` (schema
``edgeship.partition/1``) listing the stage files in order. Only that *order* is taken
from the manifest; how the stages connect is read from the stage models themselves: stage
``k`` is fed, by tensor name, from the request's inputs and the outputs of stages before
it. So a manifest that lists a passthrough tensor, or a stage that reads a tensor made
two stages earlier, needs no special case.

Each request occupies one slot from start to end; the slot has an area for every input,
every tensor a later stage reads and every final output, so stage ``k`` reads its inputs
from the slot and writes its outputs into it, then passes the slot number to stage
``k+1``. While stage 1 runs request ``i``, stage 0 already runs request ``i+1``. Each
stage can have its own cores, backend and providers (on a Jetson: stage 0 on CUDA, stage 1
on the CPU)::

    with Pipeline(["s0.onnx", "s1.onnx"], template) as pipe:
        outputs = pipe.map(requests)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from ..backends import SessionOptions
from ..errors import ModelError, UsageError
from .affinity import plan_cpus, usable_cpus
from .group import WorkerSpec
from .runner import DEFAULT_DEPTH, Feeds, ParallelRunner, Wiring, fit_slots
from .shards import DEFAULT_WARMUP, _with_threads
from .shm import Area

MANIFEST_NAME = "manifest.json"
PARTITION_SCHEMA = "edgeship.partition/1"


@dataclass(frozen=True)
class PartitionPlan:
    """What the pipeline takes from a partition manifest: stage files in order (absolute
    paths) and the source model's outputs (empty when the manifest does not say)."""

    stages: Tuple[str, ...]
    outputs: Tuple[str, ...] = ()


def read_manifest(directory: str) -> PartitionPlan:
    """The stages of ``directory/manifest.json``, ordered by their ``index``."""
    path = os.path.join(directory, MANIFEST_NAME)
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(
            f"{directory}: no {MANIFEST_NAME} (write one with `edgeship partition`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable manifest ({exc})", path=path) from exc
    schema = str(data.get("schema", "")) if isinstance(data, dict) else ""
    if schema != PARTITION_SCHEMA and not schema.startswith(PARTITION_SCHEMA + "."):
        raise ModelError(f"{path}: schema {schema or '(none)'!r}, expected {PARTITION_SCHEMA!r}")
    entries = data.get("stages") or []
    try:
        ordered = sorted(enumerate(entries), key=lambda e: (int(e[1].get("index", e[0])), e[0]))
        files = [os.path.join(directory, str(entry["file"])) for _, entry in ordered]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: a stage entry lacks its file or index ({exc})") from exc
    if not files:
        raise ModelError(f"{path}: the manifest lists no stages")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ModelError(f"{path}: stage file(s) missing: {missing}")
    return PartitionPlan(tuple(files), tuple(str(o) for o in data.get("outputs") or ()))


def wire(
    inputs: Sequence[str],
    stages: Sequence[Tuple[Sequence[str], Sequence[str]]],
    outputs: Sequence[str] = (),
) -> Tuple[List[str], List[Wiring], List[str]]:
    """Connect stages by tensor name (a pure function).

    ``inputs``: the request's tensors; ``stages``: per stage, its input and output names
    as its model declares them; ``outputs``: the final outputs wanted (default: the last
    stage's). Returns the slot areas (names), per stage what it reads and writes, and the
    final outputs. A tensor is written by the first stage that makes it.
    """
    producer: Dict[str, int] = {name: -1 for name in inputs}
    for k, (needs, makes) in enumerate(stages):
        missing = [n for n in needs if n not in producer]
        if missing:
            raise ModelError(
                f"stage {k} needs {missing}, which neither the request nor an earlier stage "
                f"provides (available: {sorted(producer)})",
                stage=k,
            )
        for name in makes:
            producer.setdefault(name, k)
    finals = list(outputs) or list(stages[-1][1])
    unknown = [n for n in finals if n not in producer]
    if unknown:
        raise ModelError(f"no stage produces the output(s) {unknown}")
    needed: Set[str] = set(finals).union(*(set(needs) for needs, _ in stages))
    areas = list(inputs) + [n for n in producer if producer[n] >= 0 and n in needed]
    wiring: List[Wiring] = [
        (
            {n: n for n in needs},
            [(i, n) for i, n in enumerate(makes) if producer[n] == k and n in needed],
        )
        for k, (needs, makes) in enumerate(stages)
    ]
    return areas, wiring, finals


class Pipeline(ParallelRunner):
    """The ``stages`` (model files, in order) as one process each, passing slots along.

    ``options`` applies to every stage unless ``stage_options`` gives one per stage;
    likewise ``backend`` and ``stage_backends``. ``outputs`` names the final outputs
    (default: the last stage's outputs).
    """

    mode = "pipeline"

    def __init__(
        self,
        stages: Sequence[str],
        template: Mapping[str, np.ndarray],
        *,
        outputs: Sequence[str] = (),
        backend: Optional[str] = None,
        options: Optional[SessionOptions] = None,
        stage_backends: Optional[Sequence[Optional[str]]] = None,
        stage_options: Optional[Sequence[SessionOptions]] = None,
        cpus: Optional[Sequence[int]] = None,
        depth: int = DEFAULT_DEPTH,
        warmup: int = DEFAULT_WARMUP,
    ) -> None:
        super().__init__()
        k = len(stages)
        if k < 1:
            raise UsageError("a pipeline needs at least one stage")
        if depth < 1:
            raise UsageError(f"depth must be at least 1, got {depth}")
        backends = _per_stage(stage_backends, backend, k, "stage_backends")
        opts = _per_stage(stage_options, options or SessionOptions(), k, "stage_options")
        plan = plan_cpus(k, list(cpus) if cpus is not None else usable_cpus())
        specs = [
            WorkerSpec(
                str(p), f"stage {i}", backends[i], _with_threads(opts[i], len(plan[i])), plan[i]
            )
            for i, p in enumerate(stages)
        ]
        self.input_areas = tuple(Area.of(name, value) for name, value in template.items())
        flush = max(1, depth // 2)
        self.refill = flush
        self._start(specs, chain=True, flush=flush)
        try:
            self._connect(template, outputs, warmup, depth, k)
        except BaseException:
            self._abort()
            raise
        self.stages = k

    def _connect(
        self,
        template: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        warmup: int,
        depth: int,
        k: int,
    ) -> None:
        group = self._group()
        signatures = [_names(w.info["signature"]) for w in group.workers]
        areas, wiring, finals = wire(list(template), signatures, outputs)
        values: Dict[str, Any] = dict(template)
        for i, (needs, _) in enumerate(signatures):
            made = self._probe(i, {n: values[n] for n in needs}, warmup)
            for name, value in made.items():
                values.setdefault(name, value)
        self.outputs = {name: name for name in finals}
        shaped = [Area.of(name, np.asarray(values[name])) for name in areas]
        slots = fit_slots(depth * k, shaped, 2 * k)
        self._attach(shaped, slots, 1 + 2 * k, wiring)
        group.routes[0].capacity = slots

    def map(self, requests: Sequence[Mapping[str, np.ndarray]]) -> List[Feeds]:
        """The final outputs of every request, in order (copied out of the slots)."""
        results: List[Feeds] = [{} for _ in requests]

        def keep(i: int, views: Mapping[str, np.ndarray]) -> None:
            results[i] = {name: views[area].copy() for name, area in self.outputs.items()}

        self.stream(requests, len(requests), sink=keep)
        return results


def _names(signature: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    return [s["name"] for s in signature["inputs"]], [s["name"] for s in signature["outputs"]]


def _per_stage(values: Optional[Sequence[Any]], default: Any, k: int, what: str) -> List[Any]:
    if values is None:
        return [default] * k
    if len(values) != k:
        raise UsageError(f"{what} has {len(values)} entries for {k} stages")
    return list(values)
