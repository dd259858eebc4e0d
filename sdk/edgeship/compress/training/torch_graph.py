"""A torch view of an ONNX graph, so ONNX files without training code can be trained.

:class:`OnnxModule` executes the graph node by node with ``torch.nn.functional``; float
initializers become parameters. Gradient×weight importance, perturbation scoring and
fine-tuning after pruning all run on it, and :meth:`OnnxModule.write_back` puts the trained
values into the ONNX model again. Only the ops of the networks people deploy on small
devices are covered (with the ``Shape``/``Gather``/``Slice``/``Resize`` arithmetic of field
exports such as PaddleOCR's, Silero's reflect ``Pad`` and ``LSTM``, Magika's reductions);
anything else, or an op's form outside what is computed here, is refused naming the node
(:class:`UnsupportedPattern`).
BatchNormalization uses its stored statistics (inference mode) also while training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from onnx import helper
from torch import nn
from torch.nn import functional as F

from edgeship.core.errors import UnsupportedPattern
from edgeship.models import onnx_graph
from edgeship.models.torch_ops import PAD_MODES, lstm, lstm_refusal, pad, slice_static

__all__ = ["OPS", "OnnxModule", "Op", "fixed_initializers", "to_tensors"]

Op = Callable[[Any, list[Any]], list[torch.Tensor]]


def _attrs(node: Any) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(attrs: dict[str, Any], name: str, default: str) -> str:
    value = attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _pads(node: Any, attrs: dict[str, Any], rank: int) -> list[int]:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise UnsupportedPattern(onnx_graph.node_label(node), node.op_type, "auto_pad SAME_*")
    pads = list(attrs.get("pads", [0] * (2 * rank)))
    # ONNX: [x1_begin, x2_begin, ..., x1_end, x2_end]; F.pad: last dim first, (begin, end)
    out: list[int] = []
    for i in reversed(range(rank)):
        out += [pads[i], pads[i + rank]]
    return out


def _conv(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    a = _attrs(node)
    w = xs[1]
    rank = w.dim() - 2
    pads = _pads(node, a, rank)
    x, padding = xs[0], (0,) * rank
    if pads[0::2] == pads[1::2]:  # symmetric: let the convolution pad (faster)
        padding = tuple(reversed(pads[0::2]))
    else:
        x = F.pad(x, pads)
    conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    bias = xs[2] if len(xs) > 2 else None
    return [
        conv(x, w, bias, a.get("strides", 1), padding, a.get("dilations", 1), a.get("group", 1))
    ]


def _gemm(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    a = _attrs(node)
    x = xs[0].t() if a.get("transA", 0) else xs[0]
    w = xs[1].t() if a.get("transB", 0) else xs[1]
    y = a.get("alpha", 1.0) * (x @ w)
    if len(xs) > 2 and xs[2] is not None:
        y = y + a.get("beta", 1.0) * xs[2]
    return [y]


def _pool(kind: str) -> Op:
    def run(node: Any, xs: list[Any]) -> list[torch.Tensor]:
        a = _attrs(node)
        k = a["kernel_shape"]
        rank = len(k)
        stride = a.get("strides", k)
        fill = -math.inf if kind == "max" else 0.0
        x = F.pad(xs[0], _pads(node, a, rank), value=fill)
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1]
            return [pool(x, k, stride, 0, a.get("dilations", 1), ceil_mode=ceil)]
        avg = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        return [avg(x, k, stride, 0, ceil_mode=ceil)]

    return run


def _bn(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    eps = _attrs(node).get("epsilon", 1e-5)
    return [F.batch_norm(xs[0], xs[3], xs[4], xs[1], xs[2], False, 0.0, eps)]


def _flatten(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    axis = _attrs(node).get("axis", 1)
    x = xs[0]
    axis = axis % x.dim() if x.dim() else 0
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


def _reshape(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    shape = [int(d) for d in xs[1].tolist()]
    shape = [xs[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [xs[0].reshape(shape)]


def _clip(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    low = xs[1] if len(xs) > 1 and xs[1] is not None else None
    high = xs[2] if len(xs) > 2 and xs[2] is not None else None
    return [torch.clamp(xs[0], low, high)]


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Op:
    return lambda node, xs: [fn(xs[0])]


def _binary(fn: Callable[[Any, Any], torch.Tensor]) -> Op:
    return lambda node, xs: [fn(xs[0], xs[1])]


def _ints(node: Any, xs: list[Any], index: int, attr: str) -> list[int] | None:
    """An int list given as input ``index`` (newer opsets) or attribute ``attr``."""
    if len(xs) > index and xs[index] is not None:
        return [int(v) for v in xs[index].reshape(-1).tolist()]
    value = _attrs(node).get(attr)
    return None if value is None else [int(v) for v in value]


def _shape(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    a = _attrs(node)
    dims = list(xs[0].shape)[a.get("start", 0) : a.get("end", None)]
    return [torch.tensor(dims, dtype=torch.int64)]


def _gather(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    x, idx = xs[0], xs[1].long()
    axis = _attrs(node).get("axis", 0) % x.dim()
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    picked = x.index_select(axis, idx.reshape(-1))
    return [picked.reshape((*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :]))]


def _unsqueeze(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    x, axes = xs[0], _ints(node, xs, 1, "axes") or []
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return [x]


def _squeeze(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    x, axes = xs[0], _ints(node, xs, 1, "axes")
    if axes is None:
        return [x.squeeze()]
    for axis in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(axis)
    return [x]


def _slice(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    starts, ends = _ints(node, xs, 1, "starts") or [], _ints(node, xs, 2, "ends") or []
    axes, steps = _ints(node, xs, 3, "axes"), _ints(node, xs, 4, "steps")
    optional = (None if v is None else tuple(v) for v in (axes, steps))
    return [slice_static(xs[0], tuple(starts), tuple(ends), *optional)]


_DTYPES = {
    1: torch.float32,
    6: torch.int32,
    7: torch.int64,
    9: torch.bool,
    10: torch.float32,  # float16 computes in float32 here, as its weights train (see below)
    11: torch.float64,
}


def _cast(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    to = _attrs(node)["to"]
    if to not in _DTYPES:
        raise UnsupportedPattern(onnx_graph.node_label(node), "Cast", f"to type {to}")
    return [xs[0].to(_DTYPES[to])]


def _resize(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    a, x = _attrs(node), xs[0]
    mode = _text(a, "mode", "nearest")
    scales = xs[1] if len(xs) == 2 else (xs[2] if len(xs) > 2 else None)  # opset 10: (x, scales)
    sizes = xs[3] if len(xs) > 3 else None
    size = [int(v) for v in sizes.tolist()[2:]] if sizes is not None and sizes.numel() else None
    factor = (
        [float(v) for v in scales.tolist()[2:]]
        if size is None and scales is not None and scales.numel()
        else None
    )
    torch_mode = {"nearest": "nearest", "linear": "bilinear", "cubic": "bicubic"}[mode]
    corners = a.get("coordinate_transformation_mode", b"") in (b"align_corners", "align_corners")
    align = None if torch_mode == "nearest" else corners
    return [F.interpolate(x, size=size, scale_factor=factor, mode=torch_mode, align_corners=align)]


def _conv_transpose(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    a, w = _attrs(node), xs[1]
    rank = w.dim() - 2
    pads = list(a.get("pads", [0] * (2 * rank)))
    if pads[:rank] != pads[rank:] or "output_shape" in a:
        raise UnsupportedPattern(onnx_graph.node_label(node), "ConvTranspose", "asymmetric pads")
    conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    bias = xs[2] if len(xs) > 2 else None
    return [
        conv(
            xs[0],
            w,
            bias,
            a.get("strides", 1),
            pads[:rank],
            a.get("output_padding", 0),
            a.get("group", 1),
            a.get("dilations", 1),
        )
    ]


def _reduce(how: str) -> Op:
    """ReduceMean / ReduceSum / ReduceMax over the ``axes`` input or attribute (all when absent)."""

    def op(node: Any, xs: list[Any]) -> list[torch.Tensor]:
        x, axes = xs[0], _ints(node, xs, 1, "axes")
        keep = bool(_attrs(node).get("keepdims", 1))
        if not axes and _attrs(node).get("noop_with_empty_axes", 0):
            return [x]
        dims = tuple(range(x.dim())) if not axes else tuple(a % x.dim() for a in axes)
        if how == "mean":
            return [x.mean(dim=dims, keepdim=keep)]
        if how == "sum":
            return [x.sum(dim=dims, keepdim=keep)]
        return [torch.amax(x, dim=dims, keepdim=keep)]

    return op


def _expand(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    """ONNX's Expand broadcasts both ways: a dim of 1 in the shape keeps the input's."""
    shape = torch.broadcast_shapes(tuple(xs[0].shape), tuple(int(d) for d in xs[1].tolist()))
    return [xs[0].expand(shape)]


def _constant_of_shape(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    value = _attrs(node).get("value")
    fill = torch.zeros(1) if value is None else torch.from_numpy(_widened(_array(value)))
    return [fill.reshape(()).expand([int(d) for d in xs[0].tolist()]).clone()]


def _array(tensor: Any) -> np.ndarray:
    from onnx import numpy_helper

    return np.asarray(numpy_helper.to_array(tensor))


def _split(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    """Split by the ``split`` sizes (input or attribute), else into ``num_outputs`` (or as
    many as the node has outputs) equal parts, the last one smaller when uneven."""
    x = xs[0]
    axis = _attrs(node).get("axis", 0) % x.dim()
    sizes = _ints(node, xs, 1, "split")
    if sizes is None:
        parts = _attrs(node).get("num_outputs", len(node.output))
        sizes = [-(-x.shape[axis] // parts)] * parts
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    return list(torch.split(x, sizes, dim=axis))


def _pad(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    """ONNX Pad: pads and value as inputs (opset 11+, with ``axes`` from 18) or attributes
    (``pads``/``value``, older)."""
    a = _attrs(node)
    value = xs[2].item() if len(xs) > 2 and xs[2] is not None else a.get("value", 0.0)
    pads, axes = _ints(node, xs, 1, "pads") or [], _ints(node, xs, 3, "axes")
    return [pad(xs[0], pads, _text(a, "mode", "constant"), value, axes)]


def _variadic(fn: Callable[[Any, Any], torch.Tensor]) -> Op:
    """Max/Min of any number of broadcast inputs."""

    def op(node: Any, xs: list[Any]) -> list[torch.Tensor]:
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return [out]

    return op


def _lstm(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    x, w, r, b, _, h, c = (*xs, *[None] * (7 - len(xs)))[:7]
    return list(lstm(x, w, r, b, h, c, _text(_attrs(node), "direction", "forward")))


def _layer_norm(node: Any, xs: list[Any]) -> list[torch.Tensor]:
    a, x = _attrs(node), xs[0]
    axis = a.get("axis", -1) % x.dim()
    bias = xs[2] if len(xs) > 2 else None
    return [F.layer_norm(x, tuple(x.shape[axis:]), xs[1], bias, a.get("epsilon", 1e-5))]


OPS: dict[str, Op] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _binary(torch.matmul),
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "Relu": _unary(F.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "LeakyRelu": lambda n, xs: [F.leaky_relu(xs[0], _attrs(n).get("alpha", 0.01))],
    "HardSigmoid": lambda n, xs: [
        torch.clamp(_attrs(n).get("alpha", 0.2) * xs[0] + _attrs(n).get("beta", 0.5), 0, 1)
    ],
    "HardSwish": _unary(F.hardswish),
    "Clip": _clip,
    "BatchNormalization": _bn,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda n, xs: [xs[0].mean(dim=tuple(range(2, xs[0].dim())), keepdim=True)],
    "GlobalMaxPool": lambda n, xs: [
        torch.amax(xs[0], dim=tuple(range(2, xs[0].dim())), keepdim=True)
    ],
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Identity": _unary(lambda x: x),
    "Dropout": _unary(lambda x: x),
    "Softmax": lambda n, xs: [F.softmax(xs[0], dim=_attrs(n).get("axis", -1))],
    "Transpose": lambda n, xs: [xs[0].permute(*_attrs(n)["perm"])],
    "Concat": lambda n, xs: [torch.cat(list(xs), dim=_attrs(n)["axis"])],
    "Shape": _shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Cast": _cast,
    "Resize": _resize,
    "ConvTranspose": _conv_transpose,
    "ReduceMean": _reduce("mean"),
    "ReduceMax": _reduce("max"),
    "ReduceSum": _reduce("sum"),
    "Split": _split,
    "Expand": _expand,
    "ConstantOfShape": _constant_of_shape,
    "Range": lambda n, xs: [
        torch.arange(xs[0].item(), xs[1].item(), xs[2].item(), dtype=xs[0].dtype)
    ],
    "Log": _unary(torch.log),
    "Pow": _binary(torch.pow),
    "Sqrt": _unary(torch.sqrt),
    "Erf": _unary(torch.erf),
    "Neg": _unary(torch.neg),
    "Exp": _unary(torch.exp),
    "LayerNormalization": _layer_norm,
    "Pad": _pad,
    "Max": _variadic(torch.maximum),
    "Min": _variadic(torch.minimum),
    "Equal": _binary(torch.eq),
    "Reciprocal": _unary(torch.reciprocal),
    "LSTM": _lstm,
}


def _refusal(node: Any) -> str | None:
    """Why a node of a supported op is still outside what its torch equivalent computes."""
    if node.op_type == "LSTM":
        return lstm_refusal(_attrs(node), list(node.input))
    if node.op_type == "Pad":
        mode = _text(_attrs(node), "mode", "constant")
        return None if mode in PAD_MODES else f"mode {mode!r}"
    return None


class OnnxModule(nn.Module):
    """Run an ONNX graph in torch; its float initializers are trainable parameters, except
    those that configure an op rather than weigh its input (:func:`fixed_initializers`)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        graph = model.graph
        for node in graph.node:
            if node.op_type not in OPS and node.op_type != "Constant":
                raise UnsupportedPattern(
                    onnx_graph.node_label(node),
                    node.op_type,
                    "no torch equivalent for training/scoring (supported: "
                    + ", ".join(sorted(OPS))
                    + ")",
                )
            reason = _refusal(node)
            if reason:
                raise UnsupportedPattern(onnx_graph.node_label(node), node.op_type, reason)
        self.nodes = list(graph.node)
        self.input_names = [
            i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}
        ]
        self.output_names = [o.name for o in graph.output]
        self.index: dict[str, int] = {}
        params: list[nn.Parameter] = []
        self.constants: dict[str, torch.Tensor] = {}
        values = onnx_graph.arrays(model)
        fixed = fixed_initializers(model, values)
        for name, value in values.items():
            if value.dtype.kind == "f" and name not in fixed:
                self.index[name] = len(params)
                params.append(nn.Parameter(torch.from_numpy(value.astype(np.float32).copy())))
            else:
                self.constants[name] = torch.from_numpy(_widened(value))
        for node in graph.node:
            if node.op_type == "Constant":
                value = helper.get_attribute_value(node.attribute[0])
                self.constants[node.output[0]] = torch.from_numpy(_widened(_array(value)))
        self.weights = nn.ParameterList(params)

    def param(self, name: str) -> torch.Tensor:
        """The trainable parameter, or the fixed tensor, an initializer became."""
        return self.weights[self.index[name]] if name in self.index else self.constants[name]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.run_all(inputs)[0]

    def run_all(self, inputs: Sequence[torch.Tensor], extra: Sequence[str] = ()) -> list[Any]:
        """All graph outputs, then the tensors named in ``extra``."""
        env: dict[str, Any] = dict(self.constants)
        env.update({name: self.param(name) for name in self.index})
        env.update(zip(self.input_names, inputs, strict=True))
        for node in self.nodes:
            if node.op_type == "Constant":
                continue
            xs = [env[n] if n else None for n in node.input]
            outs = OPS[node.op_type](node, xs)
            env.update(zip(node.output, outs, strict=False))
        return [env[n] for n in (*self.output_names, *extra)]

    def write_back(self, model: Any) -> Any:
        """``model`` (changed in place and returned) with this module's current values."""
        values = onnx_graph.arrays(model)
        for name, i in self.index.items():
            dtype = values[name].dtype
            onnx_graph.set_array(model, name, self.weights[i].detach().numpy().astype(dtype))
        return model


def _widened(value: np.ndarray) -> np.ndarray:
    """A copy of ``value``, float16 as float32: a graph stored with float16 weights trains
    and scores in float32 here (its trained weights are written back as float16)."""
    return value.astype(np.float32) if value.dtype == np.float16 else value.copy()


# Inputs that set how an op computes: BatchNormalization's stored statistics (used as they
# are, also in training), Pow's exponent, Clip's bounds.
_SETTINGS = {"BatchNormalization": (3, 4), "Pow": (1,), "Clip": (1, 2)}


def fixed_initializers(model: Any, values: dict[str, np.ndarray]) -> set[str]:
    """Of ``model``'s initializers (``values``: :func:`onnx_graph.arrays`), the float ones
    that training must leave alone: op settings (a Pow exponent moved from 2 to 2.001 turns
    every negative base into NaN; a trained running variance can go negative) and scalars,
    which are epsilons and scales of decomposed normalisations and activations, not
    weights."""
    fixed = {
        node.input[i]
        for node in model.graph.node
        for i in _SETTINGS.get(node.op_type, ())
        if i < len(node.input) and node.input[i]
    }
    fixed.update(name for name, value in values.items() if value.size <= 1)
    return fixed


def to_tensors(batch: dict[str, np.ndarray], names: Sequence[str]) -> list[torch.Tensor]:
    """Arrays by input name → tensors in the module's input order (by position if unnamed)."""
    if set(batch) == set(names):
        return [torch.from_numpy(batch[n]) for n in names]
    return [torch.from_numpy(a) for a in batch.values()]
