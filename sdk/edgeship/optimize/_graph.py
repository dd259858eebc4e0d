"""Graph optimization of an ONNX model for a target, verified like a conversion.

Steps, each optional, in this order:

1. opset conversion (``onnx.version_converter``), when ``opset`` is given;
2. the simplifier (onnxslim): constant folding, dead-node and common-subexpression
   removal, standard fusions; the result is plain ONNX;
3. ONNX Runtime's offline optimization at the highest level the target allows
   (:mod:`.policy`), written with ``optimized_model_filepath``.

The result is verified against the source on the target and published only when
equivalent (or forced); each step's node count and time are reported.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.core.errors import ConversionError, VerificationError, said_by
from edgeship.core.extras import import_optional, missing_extras
from edgeship.models.model_file import ModelFile
from edgeship.models.output import staged
from edgeship.models.ref import ModelRef
from edgeship.models.verify import Tolerance, VerifyData, failure_message, verify
from edgeship.optimize._policy import LEVELS, RuntimeFacts, allowed_level
from edgeship.optimize._report import OptimizeReport, StepRecord
from edgeship.targets import Target
from edgeship_runtime.errors import ModelError, UsageError

__all__ = [
    "OptimizeConfig",
    "convert_opset",
    "host_facts",
    "node_count",
    "op_histogram",
    "optimize",
    "ort_offline",
    "simplify",
    "target_facts",
]

_ORT_LEVEL_NAMES = {
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


@dataclass(frozen=True)
class OptimizeConfig:
    """``level``: ``auto`` (the highest the target allows), ``none``, ``basic``,
    ``extended`` or ``all``; ``simplify``: run onnxslim; ``opset``: convert to it first."""

    level: str = "auto"
    simplify: bool = True
    opset: int | None = None
    verify: VerifyData = field(default_factory=VerifyData)
    tolerance: Tolerance = field(default_factory=Tolerance)
    force: bool = False

    def __post_init__(self) -> None:
        if self.level != "auto" and self.level not in LEVELS:
            raise UsageError(f"unknown level {self.level!r} (known: auto, {', '.join(LEVELS)})")
        if self.opset is not None and not 7 <= self.opset <= 30:
            raise UsageError(f"--opset must lie in 7..30, got {self.opset}")
        if self.level == "none" and not self.simplify and self.opset is None:
            raise UsageError("nothing to do: level none, no simplifier, no opset conversion")


@missing_extras()
def optimize(
    model: Path, out: Path, target: Target, config: OptimizeConfig | None = None
) -> OptimizeReport:
    """Optimize ``model`` for ``target`` into ``out``; raises VerificationError if unequal."""
    import onnx

    config = config or OptimizeConfig()
    model, out = Path(model), Path(out)
    if ModelFile.of(model).format != "onnx":
        raise UsageError(f"{model}: graph optimization works on ONNX models")
    facts = target_facts(target)
    level, why = allowed_level(config.level, host_facts(), facts)
    proto = onnx.load(str(model))
    steps = [StepRecord("source", "", node_count(proto), 0.0)]
    if config.opset is not None:
        proto = _timed(
            steps, "opset", f"to opset {config.opset}", convert_opset, proto, config.opset
        )
    if config.simplify:
        proto = _timed(steps, "simplify", f"onnxslim {_version('onnxslim')}", simplify, proto)
    report = OptimizeReport(
        source=_ref(model),
        result=ModelRef(str(out), "onnx"),
        level_requested=config.level,
        level=level,
        level_note=why,
        steps=steps,
        target=target.identity(),
    )
    with staged(out) as tmp:
        onnx.save(proto, str(tmp))
        if level != "none":
            t0 = time.perf_counter()
            ort_offline(tmp, tmp, level)
            after = node_count(ModelFile.of(tmp).graph)
            steps.append(
                StepRecord(
                    "onnxruntime",
                    f"offline, level {level}",
                    after,
                    round(time.perf_counter() - t0, 3),
                )
            )
        report.ops_before = op_histogram(ModelFile.of(model).graph)
        report.ops_after = op_histogram(ModelFile.of(tmp).graph)
        with target.load(model) as source, target.load(tmp) as result:
            report.verification = verify(source, result, config.verify, config.tolerance)
        report.written = report.verification.passed or config.force
        report.forced = config.force and not report.verification.passed
        if report.written:
            os.replace(tmp, out)
            report.result = _ref(out)
    if not report.written:
        raise VerificationError(failure_message(report.verification, out.name), report)
    return report


def _timed(steps: list[StepRecord], name: str, detail: str, fn: Any, *args: Any) -> Any:
    t0 = time.perf_counter()
    proto = fn(*args)
    steps.append(StepRecord(name, detail, node_count(proto), round(time.perf_counter() - t0, 3)))
    return proto


def convert_opset(proto: Any, opset: int) -> Any:
    import onnx
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(proto, opset)
        onnx.checker.check_model(converted)
    except Exception as exc:
        raise ConversionError(
            f"cannot convert to opset {opset}: {said_by(exc)}", step="opset"
        ) from exc
    return converted


def simplify(proto: Any) -> Any:
    """onnxslim: constant folding, dead-node and duplicate removal, fusions."""
    from edgeship.core.quiet import quiet

    onnxslim = import_optional("onnxslim", "the simplifier")
    try:
        with quiet():
            slimmed = onnxslim.slim(proto)
    except Exception as exc:
        raise ConversionError(f"onnxslim failed: {said_by(exc)}", step="simplify") from exc
    if slimmed is None:
        raise ConversionError("onnxslim returned no model", step="simplify")
    return slimmed


def ort_offline(source: Path, out: Path, level: str) -> None:
    """Let ONNX Runtime optimize ``source`` at ``level`` and write the result to ``out``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVEL_NAMES[level])
    written = out.with_name(f".{out.name}.ort.{os.getpid()}")
    options.optimized_model_filepath = str(written)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        os.replace(written, out)
    except Exception as exc:
        raise ConversionError(
            f"ONNX Runtime could not optimize the model: {said_by(exc)}", step="onnxruntime"
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            written.unlink()


def host_facts() -> RuntimeFacts:
    import onnxruntime as ort

    return RuntimeFacts(
        ort.__version__, tuple(ort.get_available_providers()), platform.machine(), True
    )


def target_facts(target: Target) -> RuntimeFacts:
    info = target.info()
    backends: list[dict[str, Any]] = info.get("backends", [])
    ort_info = next((b for b in backends if b.get("name") == "onnxruntime"), {})
    available = bool(ort_info.get("available"))
    return RuntimeFacts(
        ort_version=ort_info.get("version") if available else None,
        providers=tuple(ort_info.get("providers") or ()),
        arch=str((info.get("environment") or {}).get("arch", "")),
        local=target.kind == "local",
    )


def node_count(proto: Any) -> int:
    return len(proto.graph.node)


def op_histogram(proto: Any) -> dict[str, int]:
    counts = collections.Counter(
        n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        for n in proto.graph.node
    )
    return dict(sorted(counts.items()))


def _ref(path: Path) -> ModelRef:
    if not path.is_file():
        raise ModelError(f"{path}: no such model file", path=str(path))
    return ModelRef.of_file(path, "onnx")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
