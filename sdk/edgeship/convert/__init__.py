"""Format conversion with verified equivalence (``edgeship convert``).

Every conversion runs source and result on the same inputs and reports max abs
difference, cosine similarity and top-1 agreement; beyond :class:`Tolerance` it raises
:class:`VerificationFailed` unless forced. See :mod:`.pipeline` for the routes.
"""

from __future__ import annotations

from .config import FORMATS, ConvertConfig, format_of
from .errors import ConversionError, PartitionError, UnsupportedOpError, VerificationFailed
from .pipeline import convert, convert_module
from .result import ConversionReport, ModelRef
from .runners import TargetRunner
from .verify import OutputComparison, Tolerance, VerifyData, VerifyReport, verify

__all__ = [
    "FORMATS",
    "ConversionError",
    "ConversionReport",
    "ConvertConfig",
    "ModelRef",
    "OutputComparison",
    "PartitionError",
    "TargetRunner",
    "Tolerance",
    "UnsupportedOpError",
    "VerificationFailed",
    "VerifyData",
    "VerifyReport",
    "convert",
    "convert_module",
    "format_of",
    "verify",
]
