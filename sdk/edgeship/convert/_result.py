"""What a converter hands back, the report of a whole conversion (JSON round trip), and
what :func:`~edgeship.convert.convert` returns: the converted file with that report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeship.models.ref import ModelRef
from edgeship.models.verify import Tolerance, VerifyReport
from edgeship_runtime.serde import JsonRecord

__all__ = ["CONVERT_SCHEMA", "ConversionReport", "ConversionResult", "Converted"]

CONVERT_SCHEMA = "edgeship.convert/1"


@dataclass
class Converted:
    """A converter's own account: its name and version, what it changed, and how close
    to its source the result can be where it computes otherwise (``tolerance``: in float32
    what the source computed in float16; None: as the conversion asks)."""

    converter: str
    notes: list[str] = field(default_factory=list)
    tolerance: Tolerance | None = None


@dataclass
class ConversionReport(JsonRecord):
    """A verified conversion. ``layout_changed`` is True when the result takes or gives
    tensors in another axis order than the source (notes say which)."""

    route: str
    source: ModelRef
    result: ModelRef
    converter: str
    verification: VerifyReport
    notes: list[str] = field(default_factory=list)
    layout_changed: bool = False
    forced: bool = False
    written: bool = True
    convert_s: float = 0.0
    verify_s: float = 0.0
    schema: str = CONVERT_SCHEMA

    @property
    def passed(self) -> bool:
        return self.verification.passed

    def layout_statement(self) -> str:
        changes = [n for n in self.verification.notes if n.startswith("LAYOUT CHANGED")]
        if changes:
            return "; ".join(changes)
        return "same input/output layout as the source"


@dataclass
class ConversionResult:
    """What :func:`~edgeship.convert.convert` returns: the converted model and its report."""

    path: Path
    report: ConversionReport
