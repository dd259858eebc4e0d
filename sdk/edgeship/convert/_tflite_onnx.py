"""TFLite → ONNX with tf2onnx, which needs TensorFlow (the ``tflite-onnx`` extra).

No converter that works without TensorFlow handles the zoo's models: tflite2onnx 0.4.1
(unmaintained since 2022) asserts on LiteRT's ``keep_num_dims`` fully-connected layers and
on depthwise convolutions with a channel multiplier. tf2onnx reads the flatbuffer itself
but imports TensorFlow to do it, so this path is behind an extra and said so in the docs.

The result keeps the TFLite tensor names and layout (a TFLite model is NHWC inside but
takes whatever layout its inputs were given; tf2onnx does not transpose the interface).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.convert._result import Converted
from edgeship.core.errors import ConversionError, UnsupportedOpError
from edgeship.core.extras import import_optional
from edgeship.core.quiet import quiet
from edgeship.models.align import match_names
from edgeship_runtime.signature import Signature

if TYPE_CHECKING:
    from edgeship.convert._routes import Job

__all__ = ["convert", "rename_io", "run"]


def run(job: Job) -> Converted:
    """The ``tflite -> onnx`` route (see :mod:`.routes`)."""
    return convert(job.file(), job.signature, job.out, job.config.opset)


def convert(source: Path, signature: Signature, out: Path, opset: int) -> Converted:
    """``signature`` is the TFLite model's as the runtime reports it: the ONNX graph's
    inputs and outputs are renamed to match it (``input`` not ``serving_default_input``)."""
    tf2onnx = _import_tf2onnx()
    try:
        with quiet():
            model, _ = tf2onnx.convert.from_tflite(str(source), opset=opset)
    except Exception as exc:
        first = next((x.strip() for x in str(exc).splitlines() if x.strip()), "")
        raise ConversionError(
            f"tf2onnx failed: {type(exc).__name__}: {first[:300]}", step="convert"
        ) from exc
    unknown = _unknown_ops(model)
    if unknown:
        raise UnsupportedOpError(f"tf2onnx {_version('tf2onnx')}", unknown, step="convert")
    import onnx

    renamed = rename_io(model, signature)
    onnx.save(model, str(out))
    notes = [f"{old!r} renamed {new!r}" for old, new in renamed.items()]
    return Converted(
        f"tf2onnx {_version('tf2onnx')} (TensorFlow {_version('tensorflow-cpu', 'tensorflow')})",
        notes,
    )


def rename_io(model: Any, signature: Signature) -> dict[str, str]:
    """Rename the graph's inputs and outputs after ``signature`` (matched by normalized
    name, else position); returns {old: new} for the names that changed."""
    graph = model.graph
    mapping: dict[str, str] = {}
    for values, specs, what in (
        (graph.input, signature.inputs, "input"),
        (graph.output, signature.outputs, "output"),
    ):
        pairs = match_names([s.name for s in specs], [v.name for v in values], what)
        mapping.update({old: new for new, old in pairs if old != new})
    taken = {n for node in graph.node for n in (*node.input, *node.output)} - set(mapping)
    if any(new in taken for new in mapping.values()):
        return {}
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = mapping.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    return mapping


def _import_tf2onnx() -> Any:
    """tf2onnx with its ``convert`` module; the extra also brings TensorFlow, which every
    maintained TFLite reader imports (a TensorFlow that fails to load is reported too)."""
    import_optional("tf2onnx.convert", "TFLite → ONNX")
    return import_optional("tf2onnx", "TFLite → ONNX")


def _unknown_ops(model: object) -> list[str]:
    """Ops tf2onnx left in TFLite form (it continues past ops it cannot map)."""
    import onnx

    unknown = []
    for node in model.graph.node:  # type: ignore[attr-defined]
        if node.domain not in ("", "ai.onnx"):
            continue
        if not onnx.defs.has(node.op_type):
            unknown.append(node.op_type.removeprefix("TFL_"))
    return sorted(set(unknown))


def _version(*dists: str) -> str:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "absent"
