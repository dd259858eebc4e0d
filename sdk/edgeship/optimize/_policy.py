"""Which ONNX Runtime offline optimization level a target can run (a pure function).

ONNX Runtime's levels (https://onnxruntime.ai/docs/performance/model-optimizations/):

    basic     constant folding, redundant-node removal: plain ONNX, runs anywhere
    extended  fusions into ORT's own ``com.microsoft`` ops: needs an ORT at least as new
    all       adds layout rewrites for *this* machine's CPU (NCHWc, vector width): only
              for the machine that wrote it

An offline-optimized model must be run under the same conditions it was written for, so
the level asked for is lowered until the target's runtime allows it, and the reason is
said. A target with GPU providers (CUDA, TensorRT) gets ``basic``: fusions made for the
CPU provider would keep those nodes on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgeship_runtime.errors import UsageError

__all__ = ["CPU", "LEVELS", "RuntimeFacts", "allowed_level", "version_tuple"]

LEVELS = ("none", "basic", "extended", "all")
"""``auto`` asks for ``all`` and takes what the target allows."""
CPU = "CPUExecutionProvider"
_HOST_ONLY = {CPU, "AzureExecutionProvider"}


@dataclass(frozen=True)
class RuntimeFacts:
    """What matters about one machine's ONNX Runtime: version, providers, CPU, identity."""

    ort_version: str | None
    providers: tuple[str, ...]
    arch: str
    local: bool


def version_tuple(text: str | None) -> tuple[int, ...]:
    parts = []
    for piece in (text or "").split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def allowed_level(requested: str, host: RuntimeFacts, target: RuntimeFacts) -> tuple[str, str]:
    """(level to use, why it is lower than asked — empty when it is not)."""
    if requested == "auto":
        requested = "all"
    if requested not in LEVELS:
        raise UsageError(f"unknown optimization level {requested!r} (known: {', '.join(LEVELS)})")
    level, reasons = requested, []
    if level == "all" and not target.local:
        level = "extended"
        reasons.append(
            "'all' rewrites the graph for this host's CPU, so it is kept for the local target only"
        )
    if level == "extended" and _gpu_providers(target.providers):
        level = "basic"
        reasons.append(
            f"the target has {', '.join(_gpu_providers(target.providers))}: "
            "CPU fusions would pin nodes to the CPU provider"
        )
    if (
        level == "extended"
        and version_tuple(target.ort_version)[:2] < version_tuple(host.ort_version)[:2]
    ):
        level = "basic"
        reasons.append(
            f"the target's ONNX Runtime {target.ort_version} is older than this "
            f"host's {host.ort_version}, whose fused ops it may lack"
        )
    return level, "; ".join(reasons)


def _gpu_providers(providers: Sequence[str]) -> list[str]:
    return [p for p in providers if p not in _HOST_ONLY]
