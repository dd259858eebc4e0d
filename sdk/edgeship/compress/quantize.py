"""Quantization of ONNX models with ONNX Runtime's quantizer and onnxconverter-common.

* ``int8-dynamic``: weights INT8 (per channel by default), activations quantized at run time.
* ``int8-static``: QDQ format, INT8 weights (per channel) and UINT8 activations whose ranges
  come from calibration data (MinMax, Entropy or Percentile). The model is pre-processed
  (shape inference, basic graph optimisation) first, as ONNX Runtime recommends.
* ``fp16``: weights and compute in float16, inputs and outputs kept float32.

The outcome lists which nodes were quantized, which were excluded and which stayed float.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import onnx_graph
from .config import QuantizeConfig
from .data import Dataset, require
from .errors import CompressionError
from .methods import Job, Outcome

CALIBRATION_BATCH = 32


def quantize_onnx(job: Job[QuantizeConfig]) -> Outcome:
    src, config, data, out = job.base, job.config, job.data, job.out
    model = onnx_graph.load(src)
    _check_exclusions(model, config)
    with tempfile.TemporaryDirectory(prefix="edgeship-quant-") as tmp, _quiet_ort():
        if config.method == "fp16":
            _fp16(model, config, out)
        elif config.method == "int8-dynamic":
            _dynamic(src, config, out, _op_types(model, config, dynamic=True))
        else:
            data = require(data, config.needs_data() or "")
            pre = Path(tmp) / "pre.onnx"
            _preprocess(src, pre)
            _static(pre, config, data, out, _op_types(model, config, dynamic=False))
    return Outcome(details=_what_changed(model, onnx_graph.load(out), config))


def _check_exclusions(model: Any, config: QuantizeConfig) -> None:
    names = {n.name for n in model.graph.node}
    unknown = [n for n in config.exclude_nodes if n not in names]
    if unknown:
        raise UsageError(f"excluded node(s) {unknown} are not in the model")


def _op_types(model: Any, config: QuantizeConfig, dynamic: bool) -> list[str] | None:
    """None (the quantizer's default set) unless op types are excluded."""
    if not config.exclude_op_types:
        return None
    from onnxruntime.quantization import registry

    known = (
        set(registry.IntegerOpsRegistry)
        if dynamic
        else set(registry.QLinearOpsRegistry) | set(registry.QDQRegistry)
    )
    return sorted(known - set(config.exclude_op_types))


def _preprocess(src: Path, dst: Path) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst))
    except Exception as exc:  # symbolic shape inference raises plain Exceptions
        raise CompressionError(f"{src}: pre-processing for quantization failed: {exc}") from exc


class _Reader:
    """Calibration batches for ONNX Runtime (its ``CalibrationDataReader`` protocol)."""

    def __init__(self, data: Dataset, limit: int) -> None:
        self._batches: Iterator[dict[str, Any]] = data.take(limit).batches(CALIBRATION_BATCH)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> dict[str, Any]:
        batch = self.get_next()
        if batch is None:
            raise StopIteration
        return batch

    def set_range(self, start_index: int, end_index: int) -> None:  # pragma: no cover
        raise NotImplementedError


def _static(
    src: Path, config: QuantizeConfig, data: Dataset, out: Path, op_types: list[str] | None
) -> None:
    from onnxruntime import quantization as q

    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    extra = {"CalibPercentile": config.percentile} if config.calibration == "percentile" else {}
    try:
        q.quantize_static(
            str(src),
            str(out),
            _Reader(data, config.calibration_samples),
            quant_format=q.QuantFormat.QDQ,
            per_channel=config.per_channel,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=methods[config.calibration],
            op_types_to_quantize=op_types,
            nodes_to_exclude=list(config.exclude_nodes),
            extra_options=extra,
        )
    except Exception as exc:  # onnxruntime raises untyped errors
        raise CompressionError(f"static INT8 quantization failed: {exc}") from exc


def _dynamic(src: Path, config: QuantizeConfig, out: Path, op_types: list[str] | None) -> None:
    from onnxruntime import quantization as q

    try:
        q.quantize_dynamic(
            str(src),
            str(out),
            weight_type=q.QuantType.QInt8,
            per_channel=config.per_channel,
            op_types_to_quantize=op_types,
            nodes_to_exclude=list(config.exclude_nodes),
        )
    except Exception as exc:
        raise CompressionError(f"dynamic INT8 quantization failed: {exc}") from exc


def _fp16(model: Any, config: QuantizeConfig, out: Path) -> None:
    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise CompressionError(
            "fp16 needs onnxconverter-common (pip install onnxconverter-common)"
        ) from exc
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(config.exclude_op_types)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="onnxconverter_common")
        converted = float16.convert_float_to_float16(
            model,
            keep_io_types=True,
            op_block_list=block,
            node_block_list=list(config.exclude_nodes),
        )
    onnx_graph.save(converted, out)


def _what_changed(base: Any, new: Any, config: QuantizeConfig) -> dict[str, Any]:
    """Which base nodes now compute in reduced precision, by name.

    INT8: a node was replaced (QOperator) or reads a DequantizeLinear output (QDQ). FP16:
    every node that neither the converter's op block list nor an exclusion kept float32.
    """
    excluded = set(config.exclude_nodes)
    candidates = [
        n
        for n in base.graph.node
        if n.name not in excluded and n.op_type not in config.exclude_op_types
    ]
    if config.method == "fp16":
        from onnxconverter_common import float16

        blocked = set(float16.DEFAULT_OP_BLOCK_LIST)
        quantized = [n.name for n in candidates if n.op_type not in blocked]
        kept = [n.name for n in candidates if n.op_type in blocked]
    else:
        by_name = {n.name: n for n in new.graph.node}
        made_by = onnx_graph.producers(new)

        def lowered(node: Any) -> bool:
            twin = by_name.get(node.name)
            if twin is None or twin.op_type != node.op_type:
                return True
            return any(
                i in made_by and made_by[i].op_type == "DequantizeLinear" for i in twin.input
            )

        quantized = [n.name for n in candidates if lowered(n)]
        kept = [n.name for n in candidates if not lowered(n)]
    return {
        "quantized_nodes": quantized,
        "float_nodes": kept,
        "excluded_nodes": list(config.exclude_nodes),
        "excluded_op_types": list(config.exclude_op_types),
        "format": {"int8-static": "QDQ", "int8-dynamic": "QOperator"}.get(config.method, "fp16"),
    }


class _quiet_ort:
    """ONNX Runtime's quantizer logs advice through ``logging``; keep it off the user's screen."""

    def __enter__(self) -> None:
        self._level = logging.root.level
        logging.root.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.root.setLevel(self._level)
