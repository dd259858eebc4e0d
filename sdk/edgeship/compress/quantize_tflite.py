"""Post-training quantization of ``.tflite`` models with ai-edge-quantizer (where installed).

``int8-dynamic`` is dynamic-range quantization (INT8 weights, float activations quantized
on the fly); ``int8-static`` is full INT8 with activation ranges from calibration data
(MinMax). FP16, exclusions and other calibration methods are ONNX-only and refused here.

The quantizer works by signature: a model without a SignatureDef (as MediaPipe ships
them) is given one first, ``serving_default`` over its main subgraph's inputs and outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..quiet import quiet
from .config import QuantizeConfig
from .data import Dataset, require
from .errors import CompressionError
from .methods import Job, Outcome


def quantize_tflite(job: Job[QuantizeConfig]) -> Outcome:
    src, config, data, out = job.base, job.config, job.data, job.out
    _check_supported(config)
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError as exc:
        raise CompressionError(
            "TFLite quantization needs ai-edge-quantizer (pip install ai-edge-quantizer)"
        ) from exc
    static = config.method == "int8-static"
    chosen = recipe.static_wi8_ai8() if static else recipe.dynamic_wi8_afp32()
    notes = []
    with quiet():
        try:
            model, added = with_signature(src)
            if added:
                notes.append("the model had no SignatureDef: one was added over subgraph 0")
            q = quantizer.Quantizer(model, chosen)
            calibration = (
                _calibrate(q, model, require(data, config.needs_data() or ""), config)
                if static
                else None
            )
            result = q.quantize(calibration, enable_progress_report=False)
        except (ValueError, RuntimeError, KeyError, TypeError, IndexError) as exc:
            raise CompressionError(f"{src}: TFLite quantization failed: {_describe(exc)}") from exc
    if result.quantized_model is None:
        raise CompressionError(f"{src}: the quantizer produced no model")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(result.quantized_model))
    recipe_name = "static_wi8_ai8" if static else "dynamic_wi8_afp32"
    return Outcome(details={"recipe": recipe_name, "tool": "ai-edge-quantizer"}, notes=notes)


def with_signature(src: Path) -> tuple[bytes, bool]:
    """The model's bytes, with a ``serving_default`` SignatureDef over subgraph 0's inputs
    and outputs when it has none; whether one was added."""
    data = src.read_bytes()
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    if model.signatureDefs:
        return data, False
    graph = model.subgraphs[0]

    def tensors(indices: list[int]) -> list[Any]:
        return [schema.TensorMapT(_name(graph.tensors[i].name), int(i)) for i in indices]

    model.signatureDefs = [
        schema.SignatureDefT(
            tensors(list(graph.inputs)), tensors(list(graph.outputs)), "serving_default", 0
        )
    ]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), True


def _name(raw: bytes | str | None) -> str:
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    return text.split(":")[0] or "tensor"


def _describe(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def _check_supported(config: QuantizeConfig) -> None:
    if config.method == "fp16":
        raise UsageError("fp16 is supported for ONNX models only")
    if config.exclude_nodes or config.exclude_op_types:
        raise UsageError("node/op exclusions are supported for ONNX models only")
    if config.method == "int8-static" and config.calibration != "minmax":
        raise UsageError("TFLite static INT8 calibrates with minmax only")


def _calibrate(q: object, model: bytes, data: Dataset, config: QuantizeConfig) -> object:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_content=model).get_signature_list()
    if len(signatures) != 1:
        raise CompressionError(f"expected one signature, found {list(signatures)}")
    key, sig = next(iter(signatures.items()))
    names = list(sig["inputs"])
    if len(names) != len(data.feeds):
        raise UsageError(f"the model has inputs {names}; the data has {data.names}")
    samples = data.take(config.calibration_samples)
    batches = [dict(zip(names, b.values(), strict=True)) for b in samples.batches(1)]
    return q.calibrate({key: batches})  # type: ignore[attr-defined]
