"""Errors of the compression package, leaves of edgeship's one exception tree.

    EdgeshipError
    ├── UsageError                 (edgeship) a config value that cannot work, e.g. sparsity 1.0
    ├── InputError                 (edgeship) data whose names, shapes or dtypes do not fit
    ├── VerificationError          (edgeship) a produced model failed to load or run on the
    │                              target (never reported as a success)
    └── CompressionError           a method could not produce a sound model
        ├── UnsupportedPattern     the graph has a construct the method refuses (names the node)
        ├── NothingToPrune         no layer of the model can be pruned (says why for each)
        ├── FidelityCollapse       (guard) the result no longer computes what its base does
        └── NoChange               (guard) the method changed nothing (size and outputs)

A bad option or bad data raises at once, before any work; a produced model that fails to
run is never reported as a success.
"""

from __future__ import annotations

from edgeship_runtime.errors import EdgeshipError

from edgeship.core.errors import VerificationError

__all__ = ["CompressionError", "NothingToPrune", "UnsupportedPattern", "VerificationError"]


class CompressionError(EdgeshipError):
    """A compression method failed on a valid request."""


class UnsupportedPattern(CompressionError):
    """A node the method cannot handle; ``node`` and ``op_type`` name it."""

    def __init__(self, node: str, op_type: str, why: str) -> None:
        super().__init__(f"node {node!r} ({op_type}): {why}", node=node, op_type=op_type)
        self.node = node
        self.op_type = op_type


class NothingToPrune(CompressionError):
    """Every candidate layer was ruled out; ``reasons`` maps layer → why."""

    def __init__(self, reasons: dict[str, str]) -> None:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or "no weights"
        super().__init__(f"nothing to prune ({listed})", reasons=dict(reasons))
        self.reasons = dict(reasons)
