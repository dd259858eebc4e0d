"""The shared last step of every → TFLite path: a named torch module through litert-torch.

LiteRT models are static: the example inputs fix every dimension (the batch included).
Inputs are passed by keyword so the model's signature keeps the source's names; the
interpreter then names the tensors ``serving_default_<name>``.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import ConversionError, UnsupportedOpError
from edgeship.core.extras import import_optional
from edgeship.core.quiet import quiet

__all__ = ["export_tflite", "import_litert_torch", "litert_version", "translate"]

_ATEN_OP = re.compile(r"(aten\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)")
_EXECUTING = re.compile(r"While executing %(\S+) : [^\n]*?target=([^\],]+)")
_DATA_DEPENDENT = re.compile(r"Could not guard on data-dependent expression [^\n]{0,120}")


def litert_version() -> str:
    try:
        return importlib.metadata.version("litert-torch")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def import_litert_torch() -> Any:
    return import_optional("litert_torch", "TFLite output")


def export_tflite(
    module: Any, example: Mapping[str, np.ndarray], out: Path, dynamic: bool = False
) -> str:
    """Convert ``module`` (``forward(**inputs) -> {name: tensor}``) to ``out``;
    ``dynamic``: the source declares dynamic input dims (which ``--shape`` fixes)."""
    import torch

    litert_torch = import_litert_torch()
    kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in example.items()}
    try:
        with quiet():
            edge = litert_torch.convert(module.eval(), sample_kwargs=kwargs)
            edge.export(str(out))
    except Exception as exc:
        raise translate(exc, dynamic) from exc
    return f"litert-torch {litert_version()}"


def translate(exc: Exception, dynamic: bool = False) -> ConversionError:
    """Name the ATen op LiteRT could not lower when its message says which; name a shape
    computed from tensor values (torch.export's data-dependent guards) as such, with
    ``--shape`` among what to try only for a source with ``dynamic`` input dims."""
    text = str(exc)
    ops = sorted(set(_ATEN_OP.findall(text)))
    lowered = text.lower()
    if ops and ("lower" in lowered or "not supported" in lowered or "unsupported" in lowered):
        return UnsupportedOpError("litert-torch", ops, step="convert")
    if "guardondatadependent" in (type(exc).__name__ + text).lower() or "data-dependent" in lowered:
        where = _DATA_DEPENDENT.search(text)
        node = _EXECUTING.search(text)
        at = f" ({where.group(0).strip()})" if where else ""
        at += f" at {node.group(2)}" if node else ""
        return ConversionError(
            "litert-torch cannot export a shape computed from tensor values (a data-dependent "
            f"expression, e.g. NonZero, a mask-dependent Reshape or a value-driven Resize){at}: "
            f"{'fix the input shapes with --shape, or ' if dynamic else ''}"
            "simplify the graph first",
            step="convert",
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    node = _EXECUTING.search(text)
    at = f" (while executing {node.group(1)})" if node else ""
    return ConversionError(
        f"litert-torch failed: {type(exc).__name__}: {first[:300]}{at}", step="convert"
    )
