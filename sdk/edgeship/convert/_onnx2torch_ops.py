"""Converters onnx2torch lacks, registered with its ``add_converter`` before a conversion.

``GlobalMaxPool`` (Magika's) is a max over every spatial axis; ``LSTM`` (Silero's VAD) is
:func:`edgeship.models.torch_ops.lstm`, unrolled over time so that litert-torch lowers it
to plain matmuls. An LSTM form that function does not compute stops the conversion with
one line naming it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from onnx import helper
from torch import nn

from edgeship.models.torch_ops import lstm, lstm_refusal

__all__ = ["register"]

# ONNX opsets where the op's definition changed: onnx2torch looks a converter up by the
# version that defines the op in the model's opset.
_GLOBAL_MAX_POOL_VERSIONS = (1,)
_LSTM_VERSIONS = (7, 14, 22)


class _GlobalMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=tuple(range(2, x.dim())), keepdim=True)


class _Lstm(nn.Module):
    def __init__(self, direction: str) -> None:
        super().__init__()
        self.direction = direction

    def forward(  # the ONNX input order: onnx2torch passes skipped ones by these names
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        r: torch.Tensor,
        b: torch.Tensor | None = None,
        sequence_lens: torch.Tensor | None = None,
        initial_h: torch.Tensor | None = None,
        initial_c: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return lstm(x, w, r, b, initial_h, initial_c, self.direction)


def _global_max_pool(node: Any, graph: Any) -> Any:
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    return OperationConverterResult(_GlobalMaxPool(), onnx_mapping_from_node(node))


def _lstm(node: Any, graph: Any) -> Any:
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    attrs = {a.name: helper.get_attribute_value(a) for a in node.proto.attribute}
    refusal = lstm_refusal(attrs, list(node.input_values))
    if refusal:
        raise NotImplementedError(f"LSTM: {refusal}")
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    return OperationConverterResult(_Lstm(direction), onnx_mapping_from_node(node))


def register() -> None:
    """Add the converters to onnx2torch's registry; those it has already are kept."""
    from onnx2torch.node_converters.registry import add_converter

    for op, versions, converter in (
        ("GlobalMaxPool", _GLOBAL_MAX_POOL_VERSIONS, _global_max_pool),
        ("LSTM", _LSTM_VERSIONS, _lstm),
    ):
        for version in versions:
            with contextlib.suppress(ValueError):  # registered: by an earlier call, or its own
                add_converter(op, version)(converter)
