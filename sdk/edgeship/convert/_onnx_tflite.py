"""ONNX → TFLite without TensorFlow: onnx2torch rebuilds the graph as a torch.fx module,
then litert-torch lowers that to a flatbuffer.

Coverage is what both cover (onnx2torch's converters, and those :mod:`._onnx2torch_ops`
adds: ``GlobalMaxPool``, ``LSTM``): an op without a converter is named before any work
starts; an ATen op LiteRT cannot lower is named when it fails. Dynamic dims are fixed
(axis 0 and dims named like it to ``batch``, others to what ``shapes`` or the
verification data say; never guessed): LiteRT models are static. The graph is then
frozen at those shapes (``Constant`` weights folded, onnxslim with the input shapes
fixed), so ``Shape``/``Gather``/``Resize`` arithmetic becomes constants that torch.export
need not trace through.

onnx2torch imports torchvision only for its NonMaxSuppression and RoiAlign converters.
Where torchvision is absent (or is a build for another torch), it is replaced during the
import by a stand-in, and those two ops are then reported as unsupported.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeship.convert._litert import export_tflite
from edgeship.convert._result import Converted
from edgeship.convert._torch_source import NamedOutputs, identifier
from edgeship.core.errors import ConversionError, UnsupportedOpError
from edgeship.core.extras import import_optional
from edgeship.models import onnx_graph
from edgeship.models.torch_ops import pad, slice_static
from edgeship.models.verify import Tolerance
from edgeship_runtime.signature import Signature

if TYPE_CHECKING:
    from edgeship.convert._routes import Job

__all__ = [
    "CONVERTER",
    "FLOAT16_SOURCE",
    "computed_clips",
    "convert",
    "data_shapes",
    "example_inputs",
    "freeze",
    "gather_static",
    "import_onnx2torch",
    "reshape_static",
    "resize_static",
    "run",
    "select_outputs",
    "split_static",
    "squeeze_static",
    "static_reshapes",
    "unsqueeze_static",
    "unsupported_ops",
]

CONVERTER = "onnx2torch"
_TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign")


def run(job: Job) -> Converted:
    """The ``onnx -> tflite`` route (see :mod:`.routes`)."""
    config = job.config
    shapes = {**data_shapes(config.verify.data, config.batch, job.signature), **config.shapes}
    return convert(job.file(), job.signature, job.out, config.batch, shapes)


def data_shapes(
    data: Path | None, batch: int, signature: Signature | None = None
) -> dict[str, tuple[int, ...]]:
    """Shapes at ``batch`` of the verification data's arrays (by name), if any; an input
    given once per call (a state, a sample rate: by ``signature``) keeps its own shape."""
    if data is None:
        return {}
    from edgeship_runtime.inputs import LABELS_KEY, load_arrays, per_call_inputs

    arrays = {k: a for k, a in load_arrays(str(data)).items() if k not in ("", LABELS_KEY)}
    fixed = per_call_inputs(signature, arrays) if signature is not None else []
    return {k: a.shape if k in fixed else (batch, *a.shape[1:]) for k, a in arrays.items()}


def convert(
    source: Path, signature: Signature, out: Path, batch: int, shapes: Mapping[str, tuple[int, ...]]
) -> Converted:
    import onnx

    example = example_inputs(signature, batch, shapes)  # refuses an unknown dim at once
    model = onnx.load(str(source))
    onnx2torch, missing_vision = import_onnx2torch()
    unsupported = unsupported_ops(model, missing_vision)
    if unsupported:
        raise UnsupportedOpError(f"onnx2torch {_version()}", unsupported, step="convert")
    widened = onnx_graph.widen_float16(model)  # LiteRT cannot lower float16 ops
    model, frozen = freeze(model, example)  # Shape/Gather arithmetic becomes constants
    computed_clips(model)
    try:
        with warnings.catch_warnings():  # its notes on modes it maps approximately
            warnings.simplefilter("ignore")
            graph_module = onnx2torch.convert(model)
    except Exception as exc:
        raise ConversionError(
            f"onnx2torch failed: {_describe(exc)}{_where(exc)}", step="convert"
        ) from exc
    static_reshapes(graph_module)
    select_outputs(graph_module, model)
    renamed = {identifier(n): a for n, a in example.items()}
    outputs = [s.name for s in signature.outputs]
    dynamic = any(s.is_dynamic for s in signature.inputs)
    module = NamedOutputs(graph_module, list(renamed), outputs)
    converter = export_tflite(module, renamed, out, dynamic)
    notes = [f"static shapes { {n: list(a.shape) for n, a in example.items()} }"]
    if frozen:
        notes.append(frozen)
    if widened:
        notes.append(f"{widened} float16 weight(s) widened to float32 (computed in float32)")
    notes += [
        f"input {n!r} is {identifier(n)!r} in the LiteRT signature"
        for n in example
        if identifier(n) != n
    ]
    tolerance = FLOAT16_SOURCE if widened else None
    return Converted(f"onnx2torch {_version()} + {converter}", notes, tolerance)


FLOAT16_SOURCE = Tolerance(atol=1e-3, rtol=1e-2)
"""How close a result computed in float32 comes to a source computed in float16: the
source's own rounding (float16 keeps 11 bits) is the difference."""


def example_inputs(
    signature: Signature, batch: int, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """Zeros at the static shape each input gets in the TFLite model: ``shapes`` where
    given, batch dims ``batch``; any other dynamic dim is refused, naming it."""
    from edgeship_runtime.inputs import batch_symbols, resolve_shape

    names = batch_symbols(signature)
    return {
        spec.name: np.zeros(
            resolve_shape(spec, shapes.get(spec.name), names, batch), dtype=spec.dtype
        )
        for spec in signature.inputs
    }


def freeze(model: Any, example: Mapping[str, np.ndarray]) -> tuple[Any, str]:
    """``model`` with ``Constant`` weights folded and simplified at the example's static
    shapes (onnxslim, where installed); the model as it was when that fails. A note."""
    from edgeship.models.prepare import fold_constants

    folded = fold_constants(model)
    try:
        import onnxslim

        from edgeship.core.quiet import quiet

        fixed = [f"{n}:{','.join(str(d) for d in a.shape)}" for n, a in example.items()]
        with quiet():
            slim = onnxslim.slim(model, input_shapes=fixed)
    except Exception:  # absent, or a graph the simplifier does not understand
        return model, f"{folded} Constant weight(s) folded" if folded else ""
    return slim, f"graph frozen at the static shapes with onnxslim ({folded} Constants folded)"


def computed_clips(model: Any) -> int:
    """Replace each ``Clip`` whose bound is computed (not an initializer) with ``Max`` and
    ``Min`` of its bounds, in place; how many. onnx2torch takes constant bounds only, and
    a log-mel front-end clips at its spectrogram's maximum less 80 dB."""
    from onnx import helper

    graph = model.graph
    known = {t.name for t in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        bounds = list(node.input[1:])
        if node.op_type != "Clip" or all(not b or b in known for b in bounds):
            nodes.append(node)
            continue
        value = node.input[0]
        for op, bound in zip(("Max", "Min"), bounds, strict=False):
            if bound:
                out = f"{node.output[0]}_{op.lower()}"
                nodes.append(helper.make_node(op, [value, bound], [out], name=f"{node.name}_{op}"))
                value = out
        nodes[-1].output[0] = node.output[0]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def static_reshapes(graph_module: Any) -> int:
    """Make onnx2torch's Reshape, Resize, Squeeze, Unsqueeze, Slice, Gather, Pad and Split
    of constant shapes/scales/axes/bounds/indices/pads/sizes static, in place; how many.

    onnx2torch reads those from tensors at run time (``if torch.any(shape == 0)``,
    ``scales.tolist()``): torch.export cannot branch on tensor values (its
    ``GuardOnDataDependentSymNode``). Constants become Python values here.
    """
    graph, count = graph_module.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_module" or not node.args:
            continue
        module = graph_module.get_submodule(node.target)
        kind = type(module).__name__
        consts = [_constant(graph_module, a) for a in node.args[1:]]
        named = {k: _constant(graph_module, v) for k, v in node.kwargs.items()}
        if kind not in _STATIC or any(c is _DYNAMIC for c in [*consts, *named.values()]):
            continue
        args = _STATIC[kind](module, node.args[0], consts, named)
        with graph.inserting_after(node):
            static = graph.call_function(args[0], args[1:])
        node.replace_all_uses_with(static)
        graph.erase_node(node)
        count += 1
    if count:
        graph.eliminate_dead_code()
        graph_module.recompile()
    return count


def select_outputs(graph_module: Any, model: Any) -> bool:
    """Make ``graph_module`` (onnx2torch's, of ``model``) return one tensor per graph
    output, in place; whether it changed.

    onnx2torch returns each producing node's whole result once: for an LSTM whose
    ``Y_h`` and ``Y_c`` are both graph outputs, the tuple ``(Y, Y_h, Y_c)``, in place of
    two tensors. Here each output picks its own item of its producer's result.
    """
    import operator

    producers = {o: n for n in model.graph.node for o in n.output if o}
    wanted = [producers[o.name] for o in model.graph.output]
    if all(len(n.output) == 1 for n in wanted):
        return False
    output = next(n for n in graph_module.graph.nodes if n.op == "output")
    returned = output.args[0]
    results = list(returned) if isinstance(returned, list | tuple) else [returned]
    by_node = dict(zip(dict.fromkeys(id(n) for n in wanted), results, strict=True))
    graph, picked = graph_module.graph, []
    with graph.inserting_before(output):
        for value, node in zip(model.graph.output, wanted, strict=True):
            result = by_node[id(node)]
            if len(node.output) > 1:
                index = list(node.output).index(value.name)
                result = graph.call_function(operator.getitem, (result, index))
            picked.append(result)
    output.args = (picked[0] if len(picked) == 1 else picked,)
    graph_module.recompile()
    return True


_DYNAMIC = object()


def _constant(graph_module: Any, arg: Any) -> Any:
    """A ``get_attr`` argument's value as a list, None as None, else :data:`_DYNAMIC`."""
    if arg is None:
        return None
    if getattr(arg, "op", "") == "get_attr":
        return _attribute(graph_module, arg.target).tolist()
    return _DYNAMIC


def _reshape_args(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
    shape = consts[0] if consts else named["shape"]
    return (reshape_static, x, tuple(int(d) for d in shape))


def _resize_args(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
    order = ["roi", "scales", "sizes"]
    if type(module).__name__ == "OnnxResizeV10":  # forward(x, scales)
        module, order = module._resize, ["scales"]
    values = {**dict(zip(order, consts, strict=False)), **named}
    scales, sizes = values.get("scales"), values.get("sizes")
    return (resize_static, x, module.onnx_mode, module.align_corners, scales, sizes)


def _axes_args(fn: Any) -> Any:
    def build(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
        axes = consts[0] if consts else named.get("axes")
        return (fn, x, None if axes is None else tuple(int(a) for a in axes))

    return build


def _slice_args(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
    values = {**dict(zip(["starts", "ends", "axes", "steps"], consts, strict=False)), **named}
    parts = [values.get(k) for k in ("starts", "ends", "axes", "steps")]
    return (slice_static, x, *(None if v is None else tuple(int(i) for i in v) for v in parts))


def _gather_args(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
    indices = consts[0] if consts else named["indices"]
    return (gather_static, x, int(module._axis), indices)


def gather_static(x: Any, axis: int, indices: Any) -> Any:
    """ONNX Gather with constant ``indices`` (an int or nested lists of ints)."""
    import torch

    axis %= x.dim()
    if isinstance(indices, int):
        return x.select(axis, indices % x.shape[axis])
    idx = torch.tensor(indices, dtype=torch.long)
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    picked = x.index_select(axis, idx.reshape(-1))
    return picked.reshape((*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :]))


def squeeze_static(x: Any, axes: tuple[int, ...] | None) -> Any:
    if axes is None:
        return x.squeeze()
    for axis in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(axis)
    return x


def unsqueeze_static(x: Any, axes: tuple[int, ...] | None) -> Any:
    axes = axes or ()
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _pad_args(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
    values = {**dict(zip(["pads", "constant_value"], consts, strict=False)), **named}
    mode = {"replicate": "edge"}.get(module.mode, module.mode)  # onnx2torch's torch name
    value = 0.0 if values.get("constant_value") is None else np.ravel(values["constant_value"])[0]
    return (pad, x, tuple(int(p) for p in values["pads"]), mode, float(value))


def _split_args(module: Any, x: Any, consts: list[Any], named: dict[str, Any]) -> tuple[Any, ...]:
    sizes = consts[0] if consts else named.get("split")
    parts = None if sizes is None else tuple(int(s) for s in sizes)
    return (split_static, x, module.axis, module.num_splits, parts)


_STATIC = {
    "OnnxReshape": _reshape_args,
    "OnnxResize": _resize_args,
    "OnnxResizeV10": _resize_args,
    "OnnxSqueezeDynamicAxes": _axes_args(squeeze_static),
    "OnnxUnsqueezeDynamicAxes": _axes_args(unsqueeze_static),
    "OnnxSlice": _slice_args,
    "OnnxGather": _gather_args,
    "OnnxPadDynamic": _pad_args,
    "OnnxSplit13": _split_args,
}


def split_static(x: Any, axis: int, count: int, sizes: tuple[int, ...] | None) -> Any:
    """ONNX Split (opset 13+) with constant ``sizes``, or ``count`` equal parts, as
    onnx2torch computes it (from a tensor: YOLOv8's head split its box distribution so)."""
    import torch

    return torch.split(x, list(sizes) if sizes is not None else x.shape[axis] // count, dim=axis)


def resize_static(x: Any, mode: str, align_corners: bool | None, scales: Any, sizes: Any) -> Any:
    """ONNX Resize with constant ``scales``/``sizes`` (of every axis; batch and channels
    kept), as onnx2torch computes it."""
    from torch.nn import functional as F

    torch_mode = {1: {"linear": "linear"}, 2: {"linear": "bilinear", "cubic": "bicubic"}}.get(
        x.dim() - 2, {}
    ).get(mode, mode if mode == "nearest" else "trilinear")
    size = [int(d) for d in sizes[2:]] if sizes else None
    factor = [float(f) for f in scales[2:]] if scales and not size else None
    return F.interpolate(
        x, size=size, scale_factor=factor, mode=torch_mode, align_corners=align_corners
    )


def reshape_static(x: Any, shape: tuple[int, ...]) -> Any:
    """ONNX Reshape with a constant ``shape`` (0: keep that input dim, -1: infer)."""
    return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


def _attribute(module: Any, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _describe(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def _where(exc: BaseException) -> str:
    """For onnx2torch's bare KeyError/AttributeError: which node it was converting."""
    tb = exc.__traceback__
    node = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("onnx_node")
        if candidate is not None:
            node = candidate
        tb = tb.tb_next
    if node is None:
        return ""
    name = getattr(node, "name", "") or "?"
    return f" (at node {name!r}, {getattr(node, 'operation_type', '?')})"


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
    """(onnx2torch with the converters of :mod:`._onnx2torch_ops` added, whether
    torchvision was stood in for when it was imported)."""
    if sys.modules.get("onnx2torch") is not None:
        onnx2torch, stood_in = sys.modules["onnx2torch"], bool(_VISION_STOOD_IN[:1] == [True])
    else:
        with _torchvision_or_standin() as stood_in:
            onnx2torch = import_optional("onnx2torch", "ONNX → TFLite")
        _VISION_STOOD_IN[:] = [stood_in]
    from edgeship.convert._onnx2torch_ops import register  # torch: importable by now

    register()
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
