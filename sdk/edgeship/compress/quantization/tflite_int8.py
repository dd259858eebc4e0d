"""Post-training quantization of ``.tflite`` models with ai-edge-quantizer (where installed).

``int8-dynamic`` is dynamic-range quantization (INT8 weights, float activations quantized
on the fly); ``int8-static`` is full INT8 with activation ranges from calibration data
(MinMax), its inputs and outputs kept float32 (quantized and dequantized inside the
model: the quantizer's own recipe would make them int8, silently breaking every caller
that feeds float) unless ``int8_io`` asks for int8 ones; ``fp16`` stores the
Conv/FullyConnected/embedding weights as FLOAT16 behind DEQUANTIZE ops (compute stays
float32). Exclusions and other calibration methods are
ONNX-only and refused here.

Three preparations come first, each a note in the report: a model without a SignatureDef
(as MediaPipe ships them) is given one, ``serving_default`` over its main subgraph's
inputs and outputs, since the quantizer works by signature; operator codes an older
converter left in the schema's deprecated field are moved to the current one
(:func:`current_op_codes`), since the quantizer reads that one only; FP16 weights (an earlier
``fp16``, the TFLite converter's float16 option) are made FLOAT32 again
(:mod:`.tflite_fp16`), since the quantizer sees constant weights only. A weight still
hidden behind a DEQUANTIZE (already INT8, or sparse) is refused: quantizing around it
would write a model no smaller than its base.

INT8 that collapses an output runs the accuracy-aware fallback (:mod:`.fallback`): the
layers, each ranked by what it does quantized alone (:func:`.fallback.rank_alone`: a
TFLite activation cannot be read out), are kept in float, as few as hold the model, with
FLOAT16 weights where the base stores its weights so. A signature added for the quantizer
is dropped from the result, whose inputs and outputs keep the base's names and order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeship.compress._data import Dataset, require
from edgeship.compress.config import QuantizeConfig
from edgeship.compress.guard import NothingToConvert
from edgeship.compress.methods import Job, Outcome
from edgeship.compress.quantization import fallback
from edgeship.compress.quantization.tflite_fp16 import float32_weights, hidden_weight
from edgeship.core.errors import CompressionError, UsageError
from edgeship.core.extras import import_optional
from edgeship.core.quiet import quiet
from edgeship_runtime.inputs import named_as

__all__ = [
    "RECIPES",
    "Prepared",
    "as_unsigned",
    "current_op_codes",
    "prepared",
    "quantize_tflite",
    "with_signature",
]

RECIPES = {
    "int8-dynamic": "dynamic_wi8_afp32",
    "int8-static": "static_wi8_ai8",
    "fp16": "weight_only_wf16_afp32",
}


def quantize_tflite(job: Job[QuantizeConfig]) -> Outcome:
    src, config, data, out = job.base, job.config, job.data, job.out
    _check_supported(config)
    import_optional("ai_edge_quantizer.quantizer", "TFLite quantization")
    with quiet():
        ready = _run(src, lambda: prepared(src))
        quantize = _quantizer(src, ready, config, data)
        quantize(src, (), out, None)
        details: dict[str, Any] = {
            "recipe": RECIPES[config.method],
            "tool": "ai-edge-quantizer",
            "int8_io": config.int8_io,
        }
        notes = list(ready.notes)
        if config.method != "fp16" and config.fallback and job.search is not None:
            layers = _scopes(ready.model, config.method)
            done = fallback.hold(src, out, layers, quantize, job.search, fallback.rank_alone)
            if done is not None:
                details["fallback"] = done.to_dict()
                notes.append(done.note)
    if ready.signature_added:  # once, at the end: reading the flatbuffer back is slow
        out.write_bytes(as_unsigned(out.read_bytes(), src.read_bytes()))
        notes.append("the SignatureDef added for the quantizer is not kept: none, as in the base")
    return Outcome(details=details, notes=notes)


def _quantizer(
    src: Path, ready: Prepared, config: QuantizeConfig, data: Dataset | None
) -> fallback.Quantize:
    """:data:`fallback.Quantize` for ``ready`` (the model the first argument names,
    prepared), calibrated once for ``int8-static``: it writes the model quantized as
    ``config`` says, the ops whose scopes (output tensor names) it is given kept in float
    (with the signature :func:`prepared` may have added)."""
    from ai_edge_quantizer import quantizer

    calibration = None
    if config.method == "int8-static":
        q = quantizer.Quantizer(ready.model, _recipe(config.method, config.int8_io))
        calibration = _run(src, lambda: _calibrate(q, ready.model, _data(data, config), config))

    def quantize(_: Path, kept: Sequence[str], out: Path, calls: fallback.Calls | None) -> None:
        half = bool(ready.fp16_weights)
        q = quantizer.Quantizer(ready.model, _recipe(config.method, config.int8_io, kept, half))
        result = _run(src, lambda: q.quantize(calibration, enable_progress_report=False))
        if result.quantized_model is None:
            raise CompressionError(f"{src}: the quantizer produced no model")
        written = bytes(result.quantized_model)
        if config.method == "fp16":
            _check_cast(src, ready, written)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(written)

    return quantize


def _run(src: Path, step: Callable[[], Any]) -> Any:
    """``step()``, a quantizer's error as one :class:`CompressionError` line."""
    try:
        return step()
    except (ValueError, RuntimeError, KeyError, TypeError, IndexError) as exc:
        raise CompressionError(f"{src}: TFLite quantization failed: {_describe(exc)}") from exc


def _data(data: Dataset | None, config: QuantizeConfig) -> Dataset:
    return require(data, config.needs_data() or "")


WEIGHTED = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}
)
"""The ops dynamic-range INT8 quantizes (their weights); static INT8 quantizes every op."""


_CAST = ("CONV_2D", "CONV_2D_TRANSPOSE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
"""The quantizer's names of the ops whose weights a layer kept in float keeps FLOAT16
(on ops without weights, such a config made static INT8 quantize their activations)."""


def _scopes(model: bytes, method: str) -> list[str]:
    """The scopes (as ai-edge-quantizer names an op: its output tensors' names, each
    followed by ``;``) of the main graph's ops ``method`` quantizes, in graph order."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    from ai_edge_quantizer.utils.tfl_flatbuffer_utils import get_op_scope

    read = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    graph = read.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [
        get_op_scope(op, graph.tensors)
        for op in graph.operators
        if method == "int8-static"
        or names.get(read.operatorCodes[op.opcodeIndex].builtinCode) in WEIGHTED
    ]


@dataclass(frozen=True)
class Prepared:
    """A model as the quantizer can use it: its bytes, a note for each thing done, whether
    a SignatureDef was added (the result loses it again) and how many FLOAT16 weights
    were made FLOAT32."""

    model: bytes
    notes: list[str]
    signature_added: bool
    fp16_weights: int


def _check_cast(src: Path, ready: Prepared, written: bytes) -> None:
    """fp16 that cast no weight beyond those the base already stored as FLOAT16 is
    :class:`NothingToConvert`."""
    if ready.fp16_weights >= max(float32_weights(written)[1], 1):
        raise NothingToConvert(
            f"{src.name}: fp16: nothing to convert, the model's weights are FLOAT16 already "
            f"({ready.fp16_weights} behind DEQUANTIZE); int8-dynamic or int8-static "
            "quantizes them"
        )


def prepared(src: Path) -> Prepared:
    """``src`` as the quantizer can use it (a signature, current operator codes, FLOAT32
    weights); a weight it still cannot see is a :class:`UsageError`."""
    model, added = with_signature(src)
    notes = ["the model had no SignatureDef: one was added over subgraph 0"] if added else []
    model, upgraded = current_op_codes(model)
    if upgraded:
        notes.append(
            f"{upgraded} operator code(s) read from the schema's deprecated field "
            "(an older converter's file)"
        )
    model, folded = float32_weights(model)
    if folded:
        notes.append(f"{folded} FLOAT16 weight(s) behind DEQUANTIZE made FLOAT32 first")
    hidden = hidden_weight(model)
    if hidden is not None:
        raise UsageError(f"{src}: cannot quantize around {hidden}; start from the float model")
    return Prepared(model, notes, added, folded)


def current_op_codes(data: bytes) -> tuple[bytes, int]:
    """``data`` (a ``.tflite``) with every operator code in ``builtin_code``; how many
    were moved there (0: ``data`` itself).

    Files of older converters (MediaPipe's face detector, face landmark and iris models)
    leave ``builtin_code`` at 0 (ADD) and keep the op in ``deprecated_builtin_code``; the
    runtime reads the larger of the two, but ai-edge-quantizer reads ``builtin_code``
    only: it would take every CONV_2D for an ADD, quantize nothing (int8-dynamic, fp16)
    or give a convolution's weights a zero point the kernel refuses (int8-static).
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    moved = 0
    for code in model.operatorCodes:
        if code.deprecatedBuiltinCode > code.builtinCode:
            code.builtinCode = code.deprecatedBuiltinCode
            moved += 1
    if not moved:
        return data, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), moved


def _recipe(
    method: str, int8_io: bool = False, kept: Sequence[str] = (), half: bool = False
) -> object:
    """The quantizer's recipe for ``method``, the ops of the scopes ``kept`` in float:
    their weights FLOAT16 where ``half`` (a base that stores its weights so: kept as they
    were, not widened to twice their size), else FLOAT32."""
    from ai_edge_quantizer import qtyping, recipe, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    manager = recipe_manager.RecipeManager()
    op = qtyping.TFLOperationName
    if method == "fp16":
        manager.add_weight_only_config(".*", "*", 16, algorithm_key="float_casting")
    elif method != "int8-static":
        manager.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    elif int8_io:
        manager.load_quantization_recipe(recipe.static_wi8_ai8())
    else:
        manager.add_static_config(".*", op.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
        for boundary in (op.INPUT, op.OUTPUT):  # the model's own inputs and outputs stay float
            manager.add_quantization_config(".*", boundary, algorithm_key=AlgorithmName.NO_QUANTIZE)
    for scope in kept:  # the latest config that matches an op (and fits it) wins
        regex = f"^{re.escape(scope)}$"
        manager.add_quantization_config(
            regex, op.ALL_SUPPORTED, algorithm_key=AlgorithmName.NO_QUANTIZE
        )
        for name in _CAST if half else ():  # a weight-only config elsewhere quantizes
            manager.add_weight_only_config(regex, op[name], 16, algorithm_key="float_casting")
    return manager.get_quantization_recipe()


def with_signature(src: Path) -> tuple[bytes, bool]:
    """The model's bytes, with a ``serving_default`` SignatureDef over subgraph 0's inputs
    and outputs when it has none; whether one was added."""
    data = src.read_bytes()
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    # buffers past the flatbuffer (ai-edge-quantizer writes them so) are read in, else
    # writing the model back would drop them
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
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


def as_unsigned(data: bytes, base: bytes) -> bytes:
    """``data`` (the quantizer's ``.tflite``) with the interface of ``base``, a model
    without SignatureDef: none kept (a signature lists outputs by name, alphabetically:
    MediaPipe's face detector would list its scores before its boxes), and the main
    graph's inputs and outputs named as the base's (static INT8 ends each float output
    in a DEQUANTIZE whose tensor it names ``<output>_dequant``); a tensor inside that
    held such a name is renamed ``<name>_inner``."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    was = flatbuffer_utils.read_model_from_bytearray(bytearray(base)).subgraphs[0]
    wanted = {
        int(now): was.tensors[old].name
        for ports, old_ports in ((graph.inputs, was.inputs), (graph.outputs, was.outputs))
        for now, old in zip(ports, old_ports, strict=True)
    }
    taken = set(wanted.values())
    for i, tensor in enumerate(graph.tensors):
        if i not in wanted and tensor.name in taken:
            tensor.name = bytes(tensor.name) + b"_inner"
    for i, name in wanted.items():
        graph.tensors[i].name = name
    model.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(raw: bytes | str | None) -> str:
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    return text.split(":")[0] or "tensor"


def _describe(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def _check_supported(config: QuantizeConfig) -> None:
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
    batches = [named_as(b, names) for b in samples.batches(1)]
    return q.calibrate({key: batches})  # type: ignore[attr-defined]
