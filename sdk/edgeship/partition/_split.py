"""``partition``: split an ONNX model into K sequential stages balanced by cost, verified.

The stages are written to ``DIR/stage_<i>.onnx`` with ``DIR/manifest.json``
(:mod:`.manifest`). Running them in sequence on the target must reproduce the source's
outputs on the verification inputs; otherwise nothing is left in ``DIR`` (unless forced).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import PartitionError, VerificationError
from edgeship.core.extras import missing_extras
from edgeship.models.model_file import ModelFile
from edgeship.models.ref import ModelRef
from edgeship.models.verify import Tolerance, VerifyData, failure_message, verify
from edgeship.partition._balance import balanced_cuts, stage_costs
from edgeship.partition._cost import (
    bind_inputs,
    crossing_bytes,
    flop_costs,
    known_shapes,
    profile_costs,
)
from edgeship.partition._graph import (
    GraphInfo,
    StagePlan,
    analyse,
    check_stages,
    plan_stages,
    stage_model,
    value_types,
)
from edgeship.partition._manifest import MANIFEST_NAME, PartitionManifest, StageEntry
from edgeship.targets import Loaded, Target
from edgeship_runtime.errors import UsageError
from edgeship_runtime.model import sha256_file
from edgeship_runtime.signature import Signature

__all__ = ["COST_MODELS", "ChainRunner", "PartitionConfig", "partition"]

COST_MODELS = {"flops": "flop", "profile": "us"}


@dataclass(frozen=True)
class PartitionConfig:
    """``stages``: K; ``cost``: ``flops`` (estimated) or ``profile`` (ONNX Runtime's
    profiler on this host); ``shapes`` binds dynamic input dims for both; ``slack`` lets
    the largest stage exceed the optimum by that fraction to cut fewer bytes."""

    stages: int
    cost: str = "flops"
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    slack: float = 0.05
    profile_runs: int = 20
    verify: VerifyData = field(default_factory=VerifyData)
    tolerance: Tolerance = field(default_factory=Tolerance)
    force: bool = False

    def __post_init__(self) -> None:
        if self.stages < 1:
            raise UsageError(f"--stages must be at least 1, got {self.stages}")
        if self.cost not in COST_MODELS:
            raise UsageError(f"--cost must be one of {', '.join(COST_MODELS)}, got {self.cost!r}")
        if not 0.0 <= self.slack <= 1.0:
            raise UsageError(f"--slack must lie in [0, 1], got {self.slack}")
        if self.profile_runs < 1:
            raise UsageError(f"--profile-runs must be at least 1, got {self.profile_runs}")


@missing_extras()
def partition(
    model: Path, out_dir: Path, target: Target, config: PartitionConfig
) -> PartitionManifest:
    import onnx

    model, out_dir = Path(model), Path(out_dir)
    if ModelFile.of(model).format != "onnx":
        raise UsageError(f"{model}: partitioning works on ONNX models")
    info = analyse(onnx.load(str(model)))
    check_stages(info, config.stages)
    shapes, itemsize = known_shapes(bind_inputs(info.model, config.shapes))
    costs = _costs(info, config, shapes)
    cross = crossing_bytes(info, shapes, itemsize)
    cuts = balanced_cuts(costs, config.stages, cross, config.slack)
    plans = plan_stages(info, cuts)
    manifest = PartitionManifest(
        source=ModelRef.of_file(model, "onnx"),
        cost_model=config.cost,
        cost_unit=COST_MODELS[config.cost],
        inputs=list(info.inputs),
        outputs=list(info.outputs),
        crossing_bytes=[float(cross[c]) for c in cuts],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    manifest.stages = _write_stages(info, plans, stage_costs(costs, cuts), out_dir)
    try:
        with target.load(model) as source, _chain(target, manifest, out_dir) as chain:
            manifest.verification = verify(source, chain, config.verify, config.tolerance)
    except BaseException:
        _clear(out_dir)
        raise
    if not manifest.verification.passed and not config.force:
        _clear(out_dir)
        message = failure_message(manifest.verification, f"the {config.stages} stages")
        raise VerificationError(message, manifest)
    (out_dir / MANIFEST_NAME).write_text(manifest.to_json() + "\n")
    return manifest


def _costs(
    info: GraphInfo, config: PartitionConfig, shapes: dict[str, tuple[int, ...]]
) -> list[float]:
    if config.cost == "flops":
        return flop_costs(info, shapes)
    feeds = _profile_feeds(info, shapes, config)
    return profile_costs(bind_inputs(info.model, config.shapes), info, feeds, config.profile_runs)


def _profile_feeds(
    info: GraphInfo, shapes: Mapping[str, tuple[int, ...]], config: PartitionConfig
) -> dict[str, np.ndarray]:
    from onnx import helper

    rng = np.random.default_rng(config.verify.seed)
    feeds = {}
    for value in info.model.graph.input:
        if value.name not in info.inputs:
            continue
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        shape = shapes.get(value.name, ())
        if dtype.kind == "f":
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = rng.integers(0, 2 if dtype.kind == "b" else 4, shape).astype(dtype)
    return feeds


def _write_stages(
    info: GraphInfo, plans: list[StagePlan], costs: list[float], out_dir: Path
) -> list[StageEntry]:
    import onnx

    types = value_types(info.model)
    total = sum(costs) or 1.0
    width = max(2, len(str(len(plans) - 1)))
    entries = []
    for plan, cost in zip(plans, costs, strict=True):
        proto = stage_model(info, plan, types)
        try:
            onnx.checker.check_model(proto)
        except Exception as exc:
            raise PartitionError(
                f"stage {plan.index} is not a valid ONNX model: {str(exc).splitlines()[0]}",
                step="partition",
            ) from exc
        name = f"stage_{plan.index:0{width}d}.onnx"
        onnx.save(proto, str(out_dir / name))
        entries.append(
            StageEntry(
                index=plan.index,
                file=name,
                inputs=plan.inputs,
                outputs=plan.outputs,
                passthrough=plan.passthrough,
                nodes=len(plan.nodes),
                cost=cost,
                cost_share=round(cost / total, 6),
                sha256=sha256_file(str(out_dir / name)),
                size_bytes=(out_dir / name).stat().st_size,
            )
        )
    return entries


def _clear(out_dir: Path) -> None:
    for path in [*out_dir.glob("stage_*.onnx"), out_dir / MANIFEST_NAME]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class ChainRunner:
    """The stages run one after another, each fed the previous one's outputs."""

    def __init__(self, stages: list[Loaded], entries: list[StageEntry], outputs: list[str]):
        self.stages = stages
        self.entries = entries
        first, last = stages[0].signature, stages[-1].signature
        by_name = {s.name: s for s in last.outputs}
        self.signature = Signature(first.inputs, tuple(by_name[n] for n in outputs))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = dict(feeds)
        for runner, entry in zip(self.stages, self.entries, strict=True):
            env = runner.run({n: env[n] for n in entry.inputs})
        return env


@contextlib.contextmanager
def _chain(target: Target, manifest: PartitionManifest, out_dir: Path) -> Any:
    with contextlib.ExitStack() as stack:
        runners = [stack.enter_context(target.load(p)) for p in manifest.stage_paths(out_dir)]
        yield ChainRunner(runners, manifest.stages, manifest.outputs)
