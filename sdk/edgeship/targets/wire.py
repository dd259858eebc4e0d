"""The host's half of the runtime protocol: each operation's request and its reply, typed.

With ``edgeship_runtime/ops.py`` (the device's half) this is the only code that spells op
names and argument keys (the protocol itself is documented at the top of
``edgeship_runtime/protocol.py``). Everything above ``targets/`` speaks in the typed
values here; a protocol change touches this module and the runtime, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.config import ParallelConfig, ProfileConfig
from edgeship.core.errors import UsageError
from edgeship_runtime.inputs import load_arrays
from edgeship_runtime.measure import InterleavePolicy
from edgeship_runtime.opprofile import OpsPolicy
from edgeship_runtime.ops import decode_tensors, encode_tensors
from edgeship_runtime.parallel import read_manifest
from edgeship_runtime.report import (
    BackendUsage,
    DeviceState,
    ModelInfo,
    OpProfile,
    ProfileReport,
    Validity,
)
from edgeship_runtime.serde import from_jsonable
from edgeship_runtime.signature import Signature

__all__ = [
    "Arrays",
    "Conditions",
    "Interleaved",
    "LoadReply",
    "Request",
    "conditions",
    "device_state",
    "info",
    "interleave",
    "load",
    "op_profile",
    "outputs",
    "parallel",
    "profile",
    "profile_ops",
    "profile_report",
    "run",
    "unload",
]

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Request:
    """One operation and its JSON-ready arguments."""

    op: str
    args: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ requests


def info() -> Request:
    return Request("info")


def load(
    device_path: str,
    config: ProfileConfig,
    sha256: str | None = None,
    companions: Mapping[str, str] | None = None,
) -> Request:
    """``sha256``: what the file at ``device_path`` must hash to (and ``companions``, its
    companion files by name: theirs); the runtime refuses a file that does not."""
    session = config.session
    args: dict[str, Any] = {
        "path": device_path,
        "backend": config.backend,
        "threads": session.threads,
        "providers": list(session.providers),
        "execution_mode": session.execution_mode,
        "graph_optimization": session.graph_optimization,
        "trt_cache": session.trt_cache,
        "trt_fp16": session.trt_fp16,
    }
    if not session.idle_spin:
        args["idle_spin"] = False
    if sha256:
        args["sha256"] = sha256
    if companions:
        args["companions"] = dict(companions)
    return Request("load", args)


def unload(handle: str) -> Request:
    return Request("unload", {"handle": handle})


def profile(
    handle: str,
    config: ProfileConfig,
    inputs: Arrays | None = None,
    parallel: dict[str, Any] | None = None,
) -> Request:
    """``inputs`` (arrays) win over ``config.inputs`` (a host file); neither: generated."""
    args: dict[str, Any] = {
        "handle": handle,
        "warmup": config.policy.warmup,
        "runs": config.policy.runs,
        "min_seconds": config.policy.min_seconds,
        "samples": config.samples,
        "seed": config.seed,
        "shapes": _shapes(config.shapes),
        "steady": config.policy.steady,
        "energy": config.policy.energy,
    }
    if config.policy.cpus:
        args["cpus"] = list(config.policy.cpus)
    _add_inputs(args, config, inputs)
    return Request("profile", {**args, **(parallel or {})})


def profile_ops(
    handle: str, policy: OpsPolicy, config: ProfileConfig, inputs: Arrays | None = None
) -> Request:
    """Per-operator times of a loaded model, on the inputs ``config`` (or ``inputs``) names."""
    args: dict[str, Any] = {
        "handle": handle,
        "runs": policy.runs,
        "warmup": policy.warmup,
        "trace": policy.trace,
        "seed": config.seed,
        "shapes": _shapes(config.shapes),
    }
    _add_inputs(args, config, inputs)
    return Request("profile_ops", args)


def conditions() -> Request:
    return Request("conditions")


def _add_inputs(args: dict[str, Any], config: ProfileConfig, inputs: Arrays | None) -> None:
    """``inputs`` (arrays) win over ``config.inputs`` (a host file); neither: generated."""
    if inputs is None and config.inputs is not None:
        inputs = load_arrays(str(config.inputs))
    if inputs is not None:
        args["inputs"] = encode_tensors(inputs)


def run(
    handle: str,
    inputs: Arrays,
    *,
    shards: int | None = None,
    request_batch: int | None = None,
) -> Request:
    args: dict[str, Any] = {"handle": handle, "inputs": encode_tensors(inputs)}
    if shards is not None:
        args["shards"] = shards
    if request_batch is not None:
        args["request_batch"] = request_batch
    return Request("run", args)


def interleave(
    handles: Sequence[str],
    policy: InterleavePolicy,
    feeds: Sequence[Arrays] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> Request:
    """``feeds``: one set of arrays per handle; None: each model's inputs generated on the
    device from its signature, ``policy.seed`` and ``shapes``."""
    args: dict[str, Any] = {
        "handles": list(handles),
        "warmup": policy.warmup,
        "block": policy.block,
        "blocks": policy.blocks,
        "seed": policy.seed,
        "shapes": _shapes(shapes or {}),
    }
    if policy.min_seconds:
        args["min_seconds"] = policy.min_seconds
    if policy.cpus:
        args["cpus"] = list(policy.cpus)
    if feeds is not None:
        if len(feeds) != len(handles):
            raise UsageError(f"{len(feeds)} input sets for {len(handles)} models")
        args["feeds"] = {h: encode_tensors(f) for h, f in zip(handles, feeds, strict=True)}
    return Request("interleave", args)


def parallel(config: ParallelConfig, stage: Callable[[Path], str]) -> dict[str, Any]:
    """The ``profile`` arguments that ask for shards or a pipeline; ``stage`` makes each
    pipeline stage file visible on the device and returns its device path."""
    args: dict[str, Any] = {"baseline": config.baseline}
    if config.request_batch is not None:
        args["request_batch"] = config.request_batch
    if config.depth is not None:
        args["depth"] = config.depth
    if config.pipeline is None:
        args["shards"] = config.shards
        return args
    plan = read_manifest(str(config.pipeline))
    pipeline: dict[str, Any] = {"stages": [stage(Path(p)) for p in plan.stages]}
    for key, values in (("providers", config.stage_providers), ("threads", config.stage_threads)):
        if values is not None:
            if len(values) != len(plan.stages):
                raise UsageError(
                    f"stage {key} has {len(values)} entries for {len(plan.stages)} stages"
                )
            pipeline[key] = [list(v) if isinstance(v, tuple) else v for v in values]
    args["pipeline"] = pipeline
    return args


def _shapes(shapes: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    return {k: list(v) for k, v in shapes.items()}


# ------------------------------------------------------------------------------ replies


@dataclass(frozen=True)
class LoadReply:
    """What the runtime says about a model it loaded."""

    handle: str
    model: ModelInfo
    backend: BackendUsage
    signature: Signature
    load_ms: float

    @classmethod
    def parse(cls, result: Mapping[str, Any]) -> LoadReply:
        return cls(
            handle=str(result["handle"]),
            model=from_jsonable(ModelInfo, result["model"]),
            backend=from_jsonable(BackendUsage, result["backend"]),
            signature=Signature.from_dict(result["signature"]),
            load_ms=float(result.get("load_ms") or 0.0),
        )


def outputs(result: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The output arrays of a ``run`` reply, by name."""
    return dict(decode_tensors(result["outputs"]))


def profile_report(result: Mapping[str, Any]) -> ProfileReport:
    return ProfileReport.from_dict(dict(result))


def op_profile(result: Mapping[str, Any]) -> OpProfile:
    return from_jsonable(OpProfile, dict(result))


def device_state(result: Mapping[str, Any]) -> DeviceState:
    return from_jsonable(DeviceState, dict(result))


@dataclass(frozen=True)
class Conditions:
    """The device's hottest thermal zone and CPU clock at one moment (None: unreadable)."""

    temperature_c: float | None = None
    cpu_freq_mhz: float | None = None
    thermal_zones: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Conditions:
        return cls(
            temperature_c=data.get("temperature_c"),
            cpu_freq_mhz=data.get("cpu_freq_mhz"),
            thermal_zones=dict(data.get("thermal_zones") or {}),
        )


@dataclass(frozen=True)
class Interleaved:
    """Models timed interleaved in one process: per model (in the order asked) its
    samples in run order; per round the order the models ran in (indices)."""

    samples_ms: list[list[float]]
    rounds: list[list[int]]
    before: Conditions
    after: Conditions
    wall_s: float
    validity: list[Validity | None] = field(default_factory=list)
    """Per model its verdict on the window (None from a runtime that gives none)."""
    device_before: DeviceState | None = None
    device_after: DeviceState | None = None
    """The device's state around the window, the verdicts' grounds (governors, clocks,
    throttling, preemptions); None from a runtime that gives none."""

    @classmethod
    def parse(cls, handles: Sequence[str], result: Mapping[str, Any]) -> Interleaved:
        index = {h: i for i, h in enumerate(handles)}
        verdicts = result.get("validity") or {}
        device = result.get("device") or {}
        return cls(
            samples_ms=[[float(x) for x in result["samples_ms"][h]] for h in handles],
            rounds=[[index[h] for h in order] for order in result["rounds"]],
            before=Conditions.parse(result["conditions"]["before"]),
            after=Conditions.parse(result["conditions"]["after"]),
            wall_s=float(result.get("wall_s") or 0.0),
            validity=[
                from_jsonable(Validity, verdicts[h]) if h in verdicts else None for h in handles
            ],
            device_before=_state(device.get("before")),
            device_after=_state(device.get("after")),
        )


def _state(data: Mapping[str, Any] | None) -> DeviceState | None:
    return None if data is None else device_state(data)
