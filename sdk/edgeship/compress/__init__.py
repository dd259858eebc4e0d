"""Compression: quantization, weight pruning, channel pruning and distillation, measured.

One entry point, :func:`compress`, dispatches on the config type; the method functions
below are the same call with the config type fixed. Every call writes a new model file and
returns a :class:`CompressionResult` whose :class:`CompressionRecord` (schema
``edgeship.compression/1``) holds the method, its parameters, size, parameter count,
sparsity, and with data accuracy and fidelity against the base. Every produced model has
been loaded and run once on the target before the call returns.

>>> from edgeship.compress import QuantizeConfig, quantize
>>> result = quantize("cnn.onnx", QuantizeConfig("int8-static"), "calib.npz", "cnn.int8.onnx")
>>> result.record.fidelity.top1_agreement  # doctest: +SKIP

Torch imports happen only in the methods that train or trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .api import CompressOptions, compress
from .config import (
    ChainConfig,
    ChannelPruneConfig,
    DistillConfig,
    PruneConfig,
    QuantizeConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from .data import DataLike, Dataset, load_dataset
from .errors import CompressionError, NothingToPrune, UnsupportedPattern, VerificationError
from .recipe import Recipe, RecipeTable, load_recipe, run_recipe
from .record import CompressionRecord, CompressionResult, Fidelity, Latency, ModelStats

if TYPE_CHECKING:
    from .torch_model import TorchModel

__all__ = [
    "ChainConfig",
    "ChannelPruneConfig",
    "CompressOptions",
    "CompressionError",
    "CompressionRecord",
    "CompressionResult",
    "Dataset",
    "DistillConfig",
    "Fidelity",
    "Latency",
    "ModelStats",
    "NothingToPrune",
    "PruneConfig",
    "QuantizeConfig",
    "Recipe",
    "RecipeTable",
    "TorchModel",
    "TrainConfig",
    "UnsupportedPattern",
    "VerificationError",
    "compress",
    "config_from_dict",
    "config_to_dict",
    "distill",
    "load_dataset",
    "load_recipe",
    "prune",
    "prune_channels",
    "quantize",
    "run_recipe",
]


def quantize(
    model: str | Path | TorchModel,
    config: QuantizeConfig,
    data: DataLike | None = None,
    out: str | Path = "quantized.onnx",
    options: CompressOptions | None = None,
) -> CompressionResult:
    """INT8 (dynamic/static) or FP16; see :class:`QuantizeConfig`."""
    return compress(model, config, data, out, options)


def prune(
    model: str | Path | TorchModel,
    config: PruneConfig,
    data: DataLike | None = None,
    out: str | Path = "pruned.onnx",
    options: CompressOptions | None = None,
) -> CompressionResult:
    """Unstructured weight pruning; see :class:`PruneConfig`."""
    return compress(model, config, data, out, options)


def prune_channels(
    model: str | Path | TorchModel,
    config: ChannelPruneConfig,
    data: DataLike | None = None,
    out: str | Path = "slim.onnx",
    options: CompressOptions | None = None,
) -> CompressionResult:
    """Structured (neuron/channel) pruning; see :class:`ChannelPruneConfig`."""
    return compress(model, config, data, out, options)


def distill(
    model: str | Path | TorchModel,
    config: DistillConfig,
    data: DataLike | None = None,
    out: str | Path = "student.onnx",
    options: CompressOptions | None = None,
) -> CompressionResult:
    """Knowledge distillation from ``model`` (the teacher); see :class:`DistillConfig`."""
    return compress(model, config, data, out, options)


def __getattr__(name: str) -> object:
    if name == "TorchModel":  # imports torch: only when asked for
        from .torch_model import TorchModel

        return TorchModel
    raise AttributeError(name)
