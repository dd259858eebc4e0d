"""Compression: quantization, weight pruning, channel pruning and distillation, measured.

One entry point, :func:`compress`, runs any method of the registry (:mod:`.methods`;
the built-in ones are registered below) as its config says; the method functions below
are the same call with the config type fixed. Every call writes a new model file and
returns a :class:`CompressionResult`: the file and its :class:`CompressionReport`
(schema ``edgeship.compression/2.3``) with the method, its parameters, size, parameter
count, sparsity, and with data accuracy and fidelity against the base: a verdict for
every output, judged for what it is, and every change of the interface. Every produced
model has been loaded and run once on the target before the call returns.

>>> from edgeship.compress import QuantizeConfig, quantize
>>> result = quantize("cnn.onnx", QuantizeConfig("int8-static"), "calib.npz", "cnn.int8.onnx")
>>> result.report.fidelity.top1_agreement  # doctest: +SKIP

Torch imports happen only in the methods that train or trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.compress._api import CompressOptions, compress
from edgeship.compress._data import DataLike, Dataset, load_dataset
from edgeship.compress._recipe import (
    Recipe,
    RecipeReport,
    RecipeResult,
    RecipeTable,
    load_recipe,
    run_recipe,
)
from edgeship.compress.config import (
    ChainConfig,
    ChannelPruneConfig,
    DistillConfig,
    PruneConfig,
    QuantizeConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from edgeship.compress.guard import (
    FidelityCollapse,
    GuardPolicy,
    Larger,
    NoChange,
    NothingToConvert,
    Slower,
)
from edgeship.compress.methods import TORCH, Method, get_method, method_names, register_method
from edgeship.compress.report import (
    CompressionReport,
    CompressionResult,
    Fidelity,
    Latency,
    ModelStats,
)
from edgeship.core.errors import (
    CompressionError,
    NothingToPrune,
    UnsupportedPattern,
    VerificationError,
)

if TYPE_CHECKING:
    from edgeship.compress.training.torch_model import TorchModel

# The built-in methods (the registry: .methods). Runners are imported when first used.
_QUANTIZE = {
    "onnx": ".quantization.onnx_int8:quantize_onnx",
    "tflite": ".quantization.tflite_int8:quantize_tflite",
}
for _name, _reads in (
    ("int8-dynamic", ("onnx", "tflite")),
    ("int8-static", ("onnx", "tflite")),
    ("fp16", ("onnx", "tflite")),
):
    register_method(
        Method(
            _name,
            QuantizeConfig,
            runners={fmt: _QUANTIZE[fmt] for fmt in _reads},
            writes={"tflite": "tflite"},
            summary="INT8 or FP16 (ONNX Runtime, onnxconverter-common, ai-edge-quantizer)",
        )
    )
del _name, _reads
register_method(
    Method(
        "prune",
        PruneConfig,
        runners={"onnx": ".pruning.weights:prune_weights"},
        training="fine_tune",
        summary="unstructured weight pruning, optional fine-tuning",
    )
)
register_method(
    Method(
        "prune-channels",
        ChannelPruneConfig,
        runners={
            TORCH: ".pruning.channels_torch:prune_channels_torch",
            "onnx": ".pruning.channels:prune_channels_onnx",
        },
        training="fine_tune",
        structured=True,
        summary="structured pruning: torch-pruning, or ONNX graph surgery",
    )
)
register_method(
    Method(
        "distill",
        DistillConfig,
        runners={fmt: ".distillation.student:distill" for fmt in (TORCH, "onnx", "tflite")},
        training="train",
        summary="knowledge distillation into a smaller student",
    )
)


__all__ = [
    "ChainConfig",
    "ChannelPruneConfig",
    "CompressOptions",
    "CompressionError",
    "CompressionReport",
    "CompressionResult",
    "Dataset",
    "DistillConfig",
    "Fidelity",
    "FidelityCollapse",
    "GuardPolicy",
    "Larger",
    "Latency",
    "Method",
    "ModelStats",
    "NoChange",
    "NothingToConvert",
    "NothingToPrune",
    "PruneConfig",
    "QuantizeConfig",
    "Recipe",
    "RecipeReport",
    "RecipeResult",
    "RecipeTable",
    "Slower",
    "TorchModel",
    "TrainConfig",
    "UnsupportedPattern",
    "VerificationError",
    "compress",
    "config_from_dict",
    "config_to_dict",
    "distill",
    "get_method",
    "load_dataset",
    "load_recipe",
    "method_names",
    "prune",
    "prune_channels",
    "quantize",
    "register_method",
    "run_recipe",
]


def quantize(
    model: str | Path | TorchModel,
    config: QuantizeConfig,
    data: DataLike | None = None,
    out: str | Path = "quantized.onnx",
    options: CompressOptions | None = None,
    *,
    eval_data: DataLike | None = None,
) -> CompressionResult:
    """INT8 (dynamic/static) or FP16; see :class:`QuantizeConfig`."""
    return compress(model, config, data, out, options, eval_data=eval_data)


def prune(
    model: str | Path | TorchModel,
    config: PruneConfig,
    data: DataLike | None = None,
    out: str | Path = "pruned.onnx",
    options: CompressOptions | None = None,
    *,
    eval_data: DataLike | None = None,
) -> CompressionResult:
    """Unstructured weight pruning; see :class:`PruneConfig`."""
    return compress(model, config, data, out, options, eval_data=eval_data)


def prune_channels(
    model: str | Path | TorchModel,
    config: ChannelPruneConfig,
    data: DataLike | None = None,
    out: str | Path = "slim.onnx",
    options: CompressOptions | None = None,
    *,
    eval_data: DataLike | None = None,
) -> CompressionResult:
    """Structured (neuron/channel) pruning; see :class:`ChannelPruneConfig`."""
    return compress(model, config, data, out, options, eval_data=eval_data)


def distill(
    model: str | Path | TorchModel,
    config: DistillConfig,
    data: DataLike | None = None,
    out: str | Path = "student.onnx",
    options: CompressOptions | None = None,
    *,
    eval_data: DataLike | None = None,
) -> CompressionResult:
    """Knowledge distillation from ``model`` (the teacher); see :class:`DistillConfig`."""
    return compress(model, config, data, out, options, eval_data=eval_data)


def __getattr__(name: str) -> object:
    if name == "TorchModel":  # imports torch: only when asked for
        from edgeship.compress.training.torch_model import TorchModel

        return TorchModel
    raise AttributeError(name)
