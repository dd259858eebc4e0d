"""ONNX Runtime backend: CPU by default; CUDA / TensorRT providers when asked for and present.

Per-operator timing (:class:`OrtProfilingSession`) is ONNX Runtime's session profiler: a
second session opened with ``enable_profiling``, whose ``end_profiling()`` writes a Chrome
trace; its ``Node`` events (``<node>_kernel_time``: op type, provider, shapes, duration
in µs) are read back per ``model_run``. Times of a GPU provider's nodes are host-side.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import InferenceError, ModelError, UsageError
from ..signature import Dim, Signature, TensorSpec
from .base import BackendInfo, OpTrace, SessionOptions, TracedNode, TracedRun

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}

CPU = "CPUExecutionProvider"

_ORT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OrtSession:
    def __init__(self, session: object) -> None:
        self._session = session
        self.signature = Signature(
            tuple(_spec(node) for node in session.get_inputs()),  # type: ignore[attr-defined]
            tuple(_spec(node) for node in session.get_outputs()),  # type: ignore[attr-defined]
        )

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        try:
            return self._session.run(None, feeds)  # type: ignore[attr-defined]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            message = str(exc).strip()  # its messages end with a newline
            raise InferenceError(f"ONNX Runtime failed to run the model: {message}") from exc

    def execution(self) -> Dict[str, List[str]]:
        return {"providers": list(self._session.get_providers())}  # type: ignore[attr-defined]

    def close(self) -> None:
        self._session = None


class OnnxRuntimeBackend:
    name = "onnxruntime"
    formats: Tuple[str, ...] = ("onnx",)

    def info(self) -> BackendInfo:
        try:
            import onnxruntime as ort
        except Exception as exc:  # ImportError, or a broken native library
            return BackendInfo(self.name, False, reason=f"cannot import onnxruntime: {exc}")
        return BackendInfo(
            self.name,
            True,
            version=ort.__version__,
            providers=tuple(ort.get_available_providers()),
            module="onnxruntime",
            formats=self.formats,
        )

    def load(self, path: str, options: SessionOptions) -> OrtSession:
        return OrtSession(_open(path, options))

    def open_profiling(
        self, path: str, options: SessionOptions, directory: str
    ) -> OrtProfilingSession:
        def profiled(so: Any) -> None:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(directory, "ort-profile")

        return OrtProfilingSession(_open(path, options, profiled))


class OrtProfilingSession(OrtSession):
    """A session with ONNX Runtime's profiler on; :meth:`finish` reads its trace."""

    def finish(self) -> OpTrace:
        trace_file = self._session.end_profiling()  # type: ignore[attr-defined]
        self._session = None
        with open(trace_file, encoding="utf-8") as f:
            events = json.load(f)
        os.remove(trace_file)
        return OpTrace(runs=trace_runs(events), events=events)


def _open(path: str, options: SessionOptions, extra: Optional[Callable[[Any], None]] = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    parallel = options.execution_mode == "parallel"
    if options.threads:
        so.intra_op_num_threads = options.threads
        if not parallel:  # parallel mode keeps ORT's own inter-op pool (1 would serialise)
            so.inter_op_num_threads = 1
    if parallel:
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, _ORT_LEVELS[options.graph_optimization]
    )
    so.log_severity_level = 3
    if extra is not None:
        extra(so)
    providers = select_providers(options.providers, ort.get_available_providers())
    try:
        return ort.InferenceSession(path, sess_options=so, providers=providers)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable ONNX model ({_first_line(exc)})") from exc


def trace_runs(events: List[Dict[str, Any]]) -> List[TracedRun]:
    """The runs of an ONNX Runtime profile in order: each ``model_run`` event with the
    ``Node`` kernel events that fall inside it."""
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )
    kernels = sorted(
        (
            e
            for e in events
            if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")
        ),
        key=lambda e: e["ts"],
    )
    traced, k = [], 0
    for run in runs:
        start, end = run["ts"], run["ts"] + run["dur"]
        nodes = []
        while k < len(kernels) and kernels[k]["ts"] < start:
            k += 1  # a kernel outside any run (none expected)
        while k < len(kernels) and kernels[k]["ts"] <= end:
            nodes.append(_node(kernels[k]))
            k += 1
        traced.append(TracedRun(dur_us=float(run["dur"]), nodes=tuple(nodes)))
    return traced


def _node(event: Dict[str, Any]) -> TracedNode:
    args = event.get("args") or {}
    return TracedNode(
        name=str(event["name"])[: -len("_kernel_time")],
        op_type=str(args.get("op_name") or "?"),
        dur_us=float(event.get("dur") or 0),
        provider=args.get("provider"),
        input_shapes=_shapes(args.get("input_type_shape")),
        output_shapes=_shapes(args.get("output_type_shape")),
    )


def _shapes(described: Any) -> Tuple[Tuple[int, ...], ...]:
    """``[{"float": [1, 96, 8, 8]}, ...]`` → ``((1, 96, 8, 8), ...)``."""
    shapes = []
    for item in described or []:
        dims: List[Any] = next(iter(item.values()), []) if isinstance(item, dict) else []
        shapes.append(tuple(int(d) for d in dims if isinstance(d, int)))
    return tuple(shapes)


def select_providers(requested: Tuple[str, ...], available: List[str]) -> List[str]:
    """The requested providers that exist here, in order, always ending with the CPU.

    A profile may list TensorRT and CUDA for a Jetson; on a board without them the CPU
    remains. Asking only for providers that do not exist is an error, not a silent CPU run.
    """
    if not requested:
        return [CPU]
    chosen = [p for p in requested if p in available]
    if not chosen:
        raise UsageError(
            f"none of the requested execution providers {list(requested)} is available "
            f"(available: {available})"
        )
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def _spec(node: Any) -> TensorSpec:
    shape = tuple(_dim(d) for d in (node.shape or []))
    return TensorSpec(node.name, shape, _ORT_TYPES.get(node.type, str(node.type)))


def _dim(d: object) -> Dim:
    if isinstance(d, int) and d >= 0:
        return d
    return d if isinstance(d, str) and d else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
