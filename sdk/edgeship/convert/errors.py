"""Errors of conversion, optimization and partitioning (leaves of edgeship's one tree).

EdgeshipError
├── UsageError                  (edgeship.core.errors) unknown suffix, bad option value
├── VerificationError           (edgeship.core.errors) the result differs beyond tolerance, or
│                               did not run (``report``: the conversion's, optimization's
│                               or partition's report)
└── ConversionError             a model could not be converted, optimized or split
    ├── UnsupportedOpError      the graph uses ops the converter lacks (names them)
    └── PartitionError          the graph cannot be cut as asked (control flow, too few nodes)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgeship_runtime.errors import EdgeshipError

from edgeship.core.errors import VerificationError

__all__ = [
    "ConversionError",
    "PartitionError",
    "UnsupportedOpError",
    "VerificationError",
]


class ConversionError(EdgeshipError):
    """A conversion, optimization or partition could not be done; ``step`` says which."""

    def __init__(self, message: str, step: str = "", **details: Any) -> None:
        super().__init__(message, step=step, **details)
        self.step = step


class UnsupportedOpError(ConversionError):
    """The source graph uses operators that the converter on this path cannot handle."""

    def __init__(self, converter: str, ops: Sequence[str], step: str = "") -> None:
        listed = ", ".join(sorted(set(ops)))
        super().__init__(
            f"{converter} cannot convert op(s): {listed}",
            step=step,
            converter=converter,
            ops=sorted(set(ops)),
        )
        self.converter = converter
        self.ops = sorted(set(ops))


class PartitionError(ConversionError):
    """The graph cannot be split as asked."""
