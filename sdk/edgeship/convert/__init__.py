"""Format conversion with verified equivalence (``edgeship convert``).

Every conversion runs source and result on the same inputs and reports max abs
difference, cosine similarity and top-1 agreement; beyond :class:`Tolerance` it raises
:class:`~edgeship.core.errors.VerificationError` unless forced. The routes (source format →
result format → converter) are a registry: :mod:`.routes`; :func:`convert` returns a
:class:`ConversionResult`, the file and its :class:`ConversionReport`.
"""

from __future__ import annotations

from edgeship.convert._config import FORMATS, ConvertConfig, format_of
from edgeship.convert._pipeline import convert, convert_module
from edgeship.convert._result import ConversionReport, ConversionResult
from edgeship.convert._routes import Route, get_route, register_route, registered_routes
from edgeship.core.errors import (
    ConversionError,
    PartitionError,
    UnsupportedOpError,
    VerificationError,
)
from edgeship.models.ref import ModelRef
from edgeship.models.verify import OutputComparison, Tolerance, VerifyData, VerifyReport, verify

__all__ = [
    "FORMATS",
    "ConversionError",
    "ConversionReport",
    "ConversionResult",
    "ConvertConfig",
    "ModelRef",
    "OutputComparison",
    "PartitionError",
    "Route",
    "Tolerance",
    "UnsupportedOpError",
    "VerificationError",
    "VerifyData",
    "VerifyReport",
    "convert",
    "convert_module",
    "format_of",
    "get_route",
    "register_route",
    "registered_routes",
    "verify",
]
