"""Quality gates: thresholds a variant must meet against the base for the run to pass.

Each gate is a frozen dataclass with its value validated in ``__post_init__``; gates are
made by name from one registry (``min-speedup=1.3``), so an unknown name is one clear
error. A gate is checked per variant and per device; the run passes when every check
passes. ``margin`` is in the gate's unit: room left (positive) or the amount it failed by.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from edgeship.ab.result import Comparison, DeviceAB, GateResult
from edgeship.core.errors import UsageError

__all__ = [
    "GATES",
    "Gate",
    "MaxAccuracyDrop",
    "MaxMemoryRatio",
    "MaxSizeRatio",
    "MinAgreement",
    "MinSpeedup",
    "check_all",
    "make_gate",
    "parse_gate",
]


@dataclass(frozen=True)
class Gate(abc.ABC):
    """A threshold on one figure of a :class:`~.result.Comparison`."""

    value: float
    name: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    at_least: ClassVar[bool] = True
    """True: the figure must be >= value; False: <= value."""
    needs_data: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    percent: ClassVar[bool] = False
    """True: the value is a percentage in [0, 100]; False: a ratio above 0."""

    def __post_init__(self) -> None:
        value = self.value
        if self.percent and not (math.isfinite(value) and 0 <= value <= 100):
            raise UsageError(f"gate {self.name}: {value:g} is not a percentage in [0, 100]")
        if not self.percent and not (math.isfinite(value) and value > 0):
            raise UsageError(f"gate {self.name}: {value:g} must be a ratio above 0")

    @abc.abstractmethod
    def observe(self, comparison: Comparison) -> float | None:
        """The figure this gate bounds, in its unit; None when it was not measured."""

    def check(self, comparison: Comparison, target: str) -> GateResult:
        observed = self.observe(comparison)
        result = GateResult(
            gate=self.name,
            target=target,
            variant=comparison.variant,
            threshold=self.value,
            unit=self.unit,
            passed=False,
            observed=observed,
        )
        if observed is None:
            result.message = f"{self.name}: not measured for {comparison.variant} on {target}"
            return result
        margin = observed - self.value if self.at_least else self.value - observed
        result.margin = margin
        result.passed = margin >= 0
        op = ">=" if self.at_least else "<="
        state = "ok" if result.passed else f"FAILED by {abs(margin):.4g} {self.unit}"
        result.message = (
            f"{self.name}: {comparison.variant} on {target}: {observed:.4g} {self.unit} "
            f"(needs {op} {self.value:g}) {state}"
        )
        return result


@dataclass(frozen=True)
class MinSpeedup(Gate):
    """Base median latency / variant median latency."""

    name: ClassVar[str] = "min-speedup"
    unit: ClassVar[str] = "x"

    def observe(self, comparison: Comparison) -> float | None:
        return comparison.speedup


@dataclass(frozen=True)
class MaxAccuracyDrop(Gate):
    """Base accuracy minus variant accuracy, in percentage points."""

    name: ClassVar[str] = "max-accuracy-drop"
    unit: ClassVar[str] = "pp"
    at_least: ClassVar[bool] = False
    needs_data: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = True
    percent: ClassVar[bool] = True

    def observe(self, comparison: Comparison) -> float | None:
        return comparison.accuracy_drop_pp


@dataclass(frozen=True)
class MaxMemoryRatio(Gate):
    """Variant peak RSS / base peak RSS, each in its own fresh runtime process."""

    name: ClassVar[str] = "max-memory-ratio"
    unit: ClassVar[str] = "x"
    at_least: ClassVar[bool] = False

    def observe(self, comparison: Comparison) -> float | None:
        return comparison.memory_ratio


@dataclass(frozen=True)
class MaxSizeRatio(Gate):
    """Variant file size / base file size."""

    name: ClassVar[str] = "max-size-ratio"
    unit: ClassVar[str] = "x"
    at_least: ClassVar[bool] = False

    def observe(self, comparison: Comparison) -> float | None:
        return comparison.size_ratio


@dataclass(frozen=True)
class MinAgreement(Gate):
    """Share of samples where variant and base pick the same top-1 class, in %."""

    name: ClassVar[str] = "min-agreement"
    unit: ClassVar[str] = "%"
    needs_data: ClassVar[bool] = True
    percent: ClassVar[bool] = True

    def observe(self, comparison: Comparison) -> float | None:
        a = comparison.agreement
        return None if a is None else 100.0 * a.top1


GATES: dict[str, type[Gate]] = {
    cls.name: cls
    for cls in (MinSpeedup, MaxAccuracyDrop, MaxMemoryRatio, MaxSizeRatio, MinAgreement)
}


def make_gate(name: str, value: float | str) -> Gate:
    """The gate called ``name`` (``min-speedup`` or ``min_speedup``) at ``value``."""
    key = name.strip().replace("_", "-")
    if key not in GATES:
        raise UsageError(f"unknown gate {name!r} (known: {', '.join(GATES)})")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"gate {key}: {value!r} is not a number") from None
    return GATES[key](number)


def parse_gate(text: str) -> Gate:
    """``"min-speedup=1.3"`` → :class:`MinSpeedup` (1.3)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"bad --gate {text!r}: expected NAME=VALUE, e.g. min-speedup=1.3")
    return make_gate(name, value)


def check_all(gates: Sequence[Gate], devices: Iterable[DeviceAB]) -> list[GateResult]:
    """Every gate for every variant on every device."""
    return [
        gate.check(comparison, str(device.target.get("name", "?")))
        for device in devices
        for comparison in device.comparisons
        for gate in gates
    ]
