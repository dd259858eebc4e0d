"""ONNX → TFLite without TensorFlow: onnx2torch rebuilds the graph as a torch.fx module,
then litert-torch lowers that to a flatbuffer.

Coverage is what both cover: an op onnx2torch has no converter for is named before any
work starts; an ATen op LiteRT cannot lower is named when it fails. Dynamic dims are
fixed (axis 0 to ``batch``, others to 1, or what ``shapes`` says): LiteRT models are static.

onnx2torch imports torchvision only for its NonMaxSuppression and RoiAlign converters.
Where torchvision is absent (or is a build for another torch), it is replaced during the
import by a stand-in, and those two ops are then reported as unsupported.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeship_runtime.signature import Signature

from .errors import ConversionError, UnsupportedOpError
from .litert import export_tflite
from .result import Converted
from .torch_source import NamedOutputs, identifier

if TYPE_CHECKING:
    from .routes import Job

CONVERTER = "onnx2torch"
_TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign")


def run(job: Job) -> Converted:
    """The ``onnx -> tflite`` route (see :mod:`.routes`)."""
    config = job.config
    return convert(job.file(), job.signature, job.out, config.batch, config.shapes)


def convert(
    source: Path, signature: Signature, out: Path, batch: int, shapes: Mapping[str, tuple[int, ...]]
) -> Converted:
    import onnx

    model = onnx.load(str(source))
    onnx2torch, missing_vision = import_onnx2torch()
    unsupported = unsupported_ops(model, missing_vision)
    if unsupported:
        raise UnsupportedOpError(f"onnx2torch {_version()}", unsupported, step="convert")
    try:
        graph_module = onnx2torch.convert(model)
    except Exception as exc:
        raise ConversionError(
            f"onnx2torch failed: {type(exc).__name__}: {str(exc).strip()[:300]}", step="convert"
        ) from exc
    example = example_inputs(signature, batch, shapes)
    renamed = {identifier(n): a for n, a in example.items()}
    outputs = [s.name for s in signature.outputs]
    converter = export_tflite(NamedOutputs(graph_module, list(renamed), outputs), renamed, out)
    notes = [f"static shapes { {n: list(a.shape) for n, a in example.items()} }"]
    notes += [
        f"input {n!r} is {identifier(n)!r} in the LiteRT signature"
        for n in example
        if identifier(n) != n
    ]
    return Converted(f"onnx2torch {_version()} + {converter}", notes)


def example_inputs(
    signature: Signature, batch: int, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """Zeros at the static shape each input gets in the TFLite model."""
    example = {}
    for spec in signature.inputs:
        if spec.name in shapes:
            dims = list(shapes[spec.name])
        else:
            dims = [d if isinstance(d, int) and d >= 0 else 1 for d in spec.shape]
            if spec.shape and not (isinstance(spec.shape[0], int) and spec.shape[0] >= 0):
                dims[0] = batch
        example[spec.name] = np.zeros(dims, dtype=spec.dtype)
    return example


def unsupported_ops(model: Any, missing_vision: bool) -> list[str]:
    """``op_type`` (with domain and opset when not the default) of nodes onnx2torch lacks."""
    from onnx2torch.node_converters.registry import get_converter

    opsets = {o.domain or "": o.version for o in model.opset_import}
    missing = set()
    for node in _all_nodes(model.graph):
        domain = node.domain or ""
        if domain == "ai.onnx":
            domain = ""
        if missing_vision and node.op_type in _TORCHVISION_OPS:
            missing.add(f"{node.op_type} (needs torchvision)")
            continue
        try:
            get_converter(node.op_type, opsets.get(domain, 1), domain)
        except NotImplementedError:
            label = node.op_type if not domain else f"{domain}.{node.op_type}"
            missing.add(f"{label} (opset {opsets.get(domain, '?')})")
    return sorted(missing)


def _all_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


_VISION_STOOD_IN: list[bool] = []


def import_onnx2torch() -> tuple[Any, bool]:
    """(onnx2torch, whether torchvision was stood in for when it was imported)."""
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"], bool(_VISION_STOOD_IN and _VISION_STOOD_IN[0])
    try:
        with _torchvision_or_standin() as stood_in:
            import onnx2torch
    except ImportError as exc:
        raise ConversionError(
            f"ONNX → TFLite needs onnx2torch (pip install 'edgeship[convert]'): {exc}",
            step="convert",
        ) from exc
    _VISION_STOOD_IN[:] = [stood_in]
    return onnx2torch, stood_in


@contextlib.contextmanager
def _torchvision_or_standin() -> Iterator[bool]:
    try:
        import torchvision.ops  # noqa: F401
    except Exception:  # absent, or a CUDA build beside a CPU torch
        pass
    else:
        yield False
        return
    for name in [k for k in sys.modules if k.split(".")[0] == "torchvision"]:
        del sys.modules[name]  # the remains of a failed import
    vision, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.roi_align = ops.nms = ops.box_convert = _needs_torchvision  # type: ignore[attr-defined]
    vision.ops = ops  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": vision, "torchvision.ops": ops})
    try:
        yield True
    finally:
        for name in ("torchvision", "torchvision.ops"):
            sys.modules.pop(name, None)


def _needs_torchvision(*args: object, **kwargs: object) -> None:
    raise ConversionError("this op needs torchvision, which is not importable here")


def _version() -> str:
    try:
        return importlib.metadata.version("onnx2torch")
    except importlib.metadata.PackageNotFoundError:
        return "absent"
