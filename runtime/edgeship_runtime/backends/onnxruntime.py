"""ONNX Runtime backend: CPU by default; CUDA / TensorRT providers when asked for and present.

Per-operator timing (:class:`OrtProfilingSession`) is ONNX Runtime's session profiler: a
second session opened with ``enable_profiling``, whose ``end_profiling()`` writes a Chrome
trace; its ``Node`` events (``<node>_kernel_time``: op type, provider, shapes, duration
in µs) are read back per ``model_run``. Times of a GPU provider's nodes are host-side.

GPU providers (:func:`provider_chain`): TensorRT, then CUDA, then the CPU, each with its
options. TensorRT builds an engine per model as a session opens or first runs (seconds
to minutes on a Jetson); with ``trt_cache`` (the default) it keeps them on the device's
disk, in a directory per model (:func:`engine_cache_dir`), and the next session loads
them instead.
fp16 kernels only with ``trt_fp16``. TensorRT's timing cache stays off: its own path
option is missing from older ONNX Runtime builds, which then write it to the working
directory, outside the deploy root. A session reports the providers it really has
(``session.get_providers()``): one asked for that did not start is named in ``not_run``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import InferenceError, ModelError, UsageError
from ..integrity import deploy_root, sha256_cached
from ..signature import Dim, Signature, TensorSpec
from .base import EngineBackend, OpTrace, SessionOptions, TracedNode, TracedRun

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
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU = "0"
"""The GPU both GPU providers use: TensorRT hands the nodes it cannot take to CUDA, and a
copy between two GPUs would be timed with the model."""
CACHE_ENV = "EDGESHIP_CACHE"

_ORT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OrtSession:
    def __init__(self, session: object, requested: Tuple[str, ...] = ()) -> None:
        self._session = session
        self._requested = requested
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
        """The providers the session has, and those asked for that it has not (not in
        this build, or failed to start: ONNX Runtime then falls back to the next)."""
        ran = list(self._session.get_providers())  # type: ignore[attr-defined]
        return {"providers": ran, "not_run": [p for p in self._requested if p not in ran]}

    def close(self) -> None:
        self._session = None


class OnnxRuntimeBackend(EngineBackend):
    """ONNX Runtime's adapter; its name, formats and providers are its catalog entry's."""

    def load(self, path: str, options: SessionOptions) -> OrtSession:
        return OrtSession(_open(path, options), options.providers)

    def open_profiling(
        self, path: str, options: SessionOptions, directory: str
    ) -> OrtProfilingSession:
        def profiled(so: Any) -> None:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(directory, "ort-profile")

        return OrtProfilingSession(_open(path, options, profiled), options.providers)


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
    if not options.idle_spin:
        so.add_session_config_entry("session.force_spinning_stop", "1")
    if extra is not None:
        extra(so)
    chosen = select_providers(options.providers, ort.get_available_providers())
    providers = provider_chain(chosen, options, path, ort.__version__)
    try:
        return ort.InferenceSession(path, sess_options=so, providers=providers)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable ONNX model ({_first_line(exc)})") from exc


def trace_runs(events: List[Dict[str, Any]]) -> List[TracedRun]:
    """The runs of an ONNX Runtime profile in order: each ``model_run`` event with the
    ``Node`` kernel events that fall inside it (``ts``, ``dur``: µs from the profiler's
    start). A kernel inside another on the same thread (a subgraph's node, within its
    ``If``/``Loop``/``Scan``) is left out: its parent's time already holds it."""
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
        key=lambda e: (e["ts"], -e["dur"]),
    )
    traced, k = [], 0
    for run in runs:
        start, end = run["ts"], run["ts"] + run["dur"]
        nodes: List[TracedNode] = []
        busy_until: Dict[Any, float] = {}  # per thread: the end of the kernel it is inside
        while k < len(kernels) and kernels[k]["ts"] < start:
            k += 1  # a kernel outside any run (none expected)
        while k < len(kernels) and kernels[k]["ts"] <= end:
            event, k = kernels[k], k + 1
            if event["ts"] < busy_until.get(event.get("tid"), event["ts"]):
                continue
            busy_until[event.get("tid")] = event["ts"] + event["dur"]
            nodes.append(_node(event))
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


def provider_chain(
    chosen: List[str], options: SessionOptions, model_path: str, ort_version: str
) -> List[Tuple[str, Dict[str, str]]]:
    """Each chosen provider (in order, see :func:`select_providers`) with its options."""
    return [(name, _provider_options(name, options, model_path, ort_version)) for name in chosen]


def _provider_options(
    name: str, options: SessionOptions, model_path: str, ort_version: str
) -> Dict[str, str]:
    if name == CUDA:
        return {"device_id": GPU}
    if name != TENSORRT:
        return {}
    trt = {"device_id": GPU, "trt_fp16_enable": str(options.trt_fp16)}
    if options.trt_cache:
        trt["trt_engine_cache_enable"] = "True"
        trt["trt_engine_cache_path"] = engine_cache_dir(model_path, options.trt_fp16, ort_version)
    return trt


def engine_cache_dir(model_path: str, fp16: bool, ort_version: str) -> str:
    """TensorRT's engine cache for one model, made on demand:
    ``CACHE/trt/<model sha256>/ort<version>-<fp16|fp32>``.

    CACHE is ``ROOT/cache`` of the deploy root the model lies in (the engines stay on the
    device with the model), else the runtime's own cache (``$EDGESHIP_CACHE`` or
    ``~/.cache/edgeship``). An engine fits one model, precision and TensorRT version: one
    directory for each, the ONNX Runtime version standing for the TensorRT it loads (ONNX
    Runtime's file names add the GPU's compute capability). A directory that resolves
    outside CACHE (a link) is refused.
    """
    base = _cache_base(model_path)
    variant = f"ort{ort_version}-{'fp16' if fp16 else 'fp32'}"
    directory = os.path.join(base, "trt", sha256_cached(model_path), variant)
    real, inside = os.path.realpath(directory), os.path.realpath(base)
    if os.path.commonpath([real, inside]) != inside:  # checked before anything is made
        raise UsageError(
            f"the TensorRT engine cache {directory} leads outside {base} (to {real}): "
            "remove the link, or pass --no-trt-cache",
            path=directory,
        )
    try:
        os.makedirs(real, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot make the TensorRT engine cache {directory}: {exc.strerror or exc} "
            "(--no-trt-cache runs without it)",
            path=directory,
        ) from None
    return real


def _cache_base(model_path: str) -> str:
    root = deploy_root(model_path)
    if root is not None:
        return os.path.join(root, "cache")
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "edgeship")


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
