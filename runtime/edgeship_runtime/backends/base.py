"""The ``Backend`` protocol and its registry.

A backend is deliberately narrow: report whether it can be imported here (and its
version), and load a model file into a :class:`Session`. A session describes its
signature, runs one batch, says which providers/delegates actually ran, and closes.
Everything else (inputs, timing, memory, reports) is shared code above this line.

Per-operator timing is a capability apart (:class:`OpProfiling`): a backend that can time
its operators opens a :class:`ProfilingSession` of its own; :func:`op_profiling` says
whether a backend can.

Which backends there are, and everything about each (formats, engine modules, packages,
providers), is the catalog's (:mod:`.catalog`); :func:`get_backend` builds a backend's
adapter from its entry, and :class:`EngineBackend` gives adapters what the entry says.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Tuple, cast

from ..errors import BackendUnavailable, UsageError
from ..probe import check_module
from ..signature import Signature
from .catalog import BackendEntry, get_entry, readers

if TYPE_CHECKING:  # arrays only in the protocol's types: the host's deploy path loads no numpy
    import numpy as np

EXECUTION_MODES = ("sequential", "parallel")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class SessionOptions:
    """How to open a session. ``threads=0`` lets the backend choose.

    ``providers`` is an ordered preference (ONNX Runtime execution providers);
    ``execution_mode`` (``"sequential"`` or ``"parallel"``) and ``graph_optimization``
    (``"disable"``, ``"basic"``, ``"extended"`` or ``"all"``, ONNX Runtime's default) are
    ONNX Runtime session settings. A backend that has no such notion ignores them.

    ``idle_spin`` (default on, ONNX Runtime's own default): the intra-op threads spin for
    a while after each run, waiting for the next; off, they sleep as a run ends. An A/B
    turns it off: a model idle between its blocks would otherwise spin (~25 ms of CPU
    after each block, measured on a 2-core VM) on the CPUs the timed model needs.

    ``trt_cache`` and ``trt_fp16`` refine TensorRT where it is among the providers (else
    they do nothing): keep its built engines on the device's disk (default on; see
    ``backends/onnxruntime.py`` for where), and let it build fp16 kernels (default off:
    it changes the outputs, so it is asked for).
    """

    threads: int = 0
    providers: Tuple[str, ...] = ()
    execution_mode: str = "sequential"
    graph_optimization: str = "all"
    trt_cache: bool = True
    trt_fp16: bool = False
    idle_spin: bool = True

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise UsageError(f"threads must be 0 (backend default) or positive, got {self.threads}")
        if self.execution_mode not in EXECUTION_MODES:
            raise UsageError(
                f"execution mode must be one of {', '.join(EXECUTION_MODES)}, "
                f"got {self.execution_mode!r}"
            )
        if self.graph_optimization not in GRAPH_OPTIMIZATIONS:
            raise UsageError(
                f"graph optimization must be one of {', '.join(GRAPH_OPTIMIZATIONS)}, "
                f"got {self.graph_optimization!r}"
            )

    def chooses_session(self) -> bool:
        """Whether threads, providers, mode or optimization level were chosen; the
        TensorRT knobs do not count (they refine whichever session applies: the board's,
        the tuned one)."""
        return SessionOptions().refining(self) != SessionOptions()

    def refining(self, session: SessionOptions) -> SessionOptions:
        """``session`` with this one's TensorRT knobs."""
        return replace(session, trt_cache=self.trt_cache, trt_fp16=self.trt_fp16)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    version: Optional[str] = None
    providers: Tuple[str, ...] = ()
    module: Optional[str] = None
    reason: Optional[str] = None
    formats: Tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "available": self.available,
            "version": self.version,
            "providers": list(self.providers),
            "module": self.module,
            "reason": self.reason,
            "formats": list(self.formats),
        }


class Session(Protocol):
    """A loaded model, ready to run."""

    signature: Signature

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        """Run one inference; outputs in ``signature.outputs`` order."""
        ...

    def execution(self) -> Dict[str, List[str]]:
        """What actually ran: ``{"providers": [...]}`` or ``{"delegates": [...]}``; with
        ``"not_run"``: providers asked for that did not run (the session fell back)."""
        ...

    def close(self) -> None:
        """Release the backend's resources; the session is unusable afterwards."""
        ...


class Backend(Protocol):
    """One inference engine, built from its catalog entry (``adapter(entry)``). The engine
    is imported inside methods, never at module import."""

    name: str
    formats: Tuple[str, ...]

    def info(self) -> BackendInfo: ...

    def load(self, path: str, options: SessionOptions) -> Session: ...


class EngineBackend:
    """What a backend's catalog entry says, for an adapter to build on: its name and
    formats, :meth:`info` from its engine modules, :meth:`engine` to import the first that
    imports. An adapter adds ``load``."""

    def __init__(self, entry: BackendEntry) -> None:
        self.entry = entry
        self.name = entry.name
        self.formats = entry.formats

    def info(self) -> BackendInfo:
        """The first engine module that imports: its version and providers (those its
        build lists where the entry names a function for it, else the entry's own)."""
        reasons = []
        for module in self.entry.imports:
            seen = check_module(module.to_probe())
            if not seen["available"]:
                reasons.append(f"cannot import {module.module}: {seen['reason']}")
                continue
            return BackendInfo(
                self.name,
                True,
                version=seen["version"],
                providers=tuple(seen.get("providers", self.entry.providers)),
                module=module.module,
                formats=self.formats,
            )
        return BackendInfo(self.name, False, reason="; ".join(reasons))

    def engine(self) -> Any:
        """The first of the entry's engine modules that imports."""
        for module in self.entry.imports:
            try:
                return importlib.import_module(module.module)
            except Exception:  # ImportError, or a broken native library: try the next
                continue
        raise _unavailable(self.name, self.info().reason)


@dataclass(frozen=True)
class TracedNode:
    """One operator's execution in one profiled run; ``dur_us`` in microseconds."""

    name: str
    op_type: str
    dur_us: float
    provider: Optional[str] = None
    input_shapes: Tuple[Tuple[int, ...], ...] = ()
    output_shapes: Tuple[Tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class TracedRun:
    """One profiled run: the backend's own time for it and its operators, in order."""

    dur_us: float
    nodes: Tuple[TracedNode, ...]


@dataclass(frozen=True)
class OpTrace:
    """What a profiling session recorded: its runs in order, and the raw trace events
    (Chrome trace format, as Perfetto and chrome://tracing read them)."""

    runs: List[TracedRun]
    events: List[Dict[str, Any]]


class ProfilingSession(Protocol):
    """A second session of a model with the backend's per-operator profiler on."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]: ...

    def finish(self) -> OpTrace:
        """Stop profiling and return the trace; the session is closed afterwards."""
        ...


class OpProfiling(Protocol):
    """A backend that can time each operator (not every backend can)."""

    def open_profiling(
        self, path: str, options: SessionOptions, directory: str
    ) -> ProfilingSession:
        """Open ``path`` with ``options`` and the profiler on, writing into ``directory``."""
        ...


def op_profiling(backend: Backend) -> Optional[OpProfiling]:
    """``backend`` as an :class:`OpProfiling`, or None when it cannot time operators."""
    if callable(getattr(backend, "open_profiling", None)):
        return cast(OpProfiling, backend)
    return None


def get_backend(name: str) -> Backend:
    """The backend ``name``: its catalog entry's adapter (imported now), built with it."""
    entry = get_entry(name)
    module, _, attribute = entry.adapter.partition(":")
    adapter: Callable[[BackendEntry], Backend] = getattr(importlib.import_module(module), attribute)
    return adapter(entry)


def backends_for_format(fmt: str) -> Sequence[str]:
    """The catalog's backends that read ``fmt``: its default first."""
    return readers(fmt)


def choose_backend(fmt: str, requested: Optional[str] = None) -> Backend:
    """The requested backend, or the first available one that reads ``fmt`` (the
    catalog's default backend for it first)."""
    if requested:
        backend = get_backend(requested)
        if fmt not in backend.formats:
            raise UsageError(f"backend {requested!r} cannot read {fmt} models")
        _require_available(backend)
        return backend
    candidates = backends_for_format(fmt)
    reasons = []
    for name in candidates:
        backend = get_backend(name)
        info = backend.info()
        if info.available:
            return backend
        reasons.append(f"{name}: {info.reason}")
    raise BackendUnavailable(
        f"no installed backend can run {fmt} models ({'; '.join(reasons) or 'none registered'})",
        format=fmt,
    )


def _require_available(backend: Backend) -> None:
    info = backend.info()
    if not info.available:
        raise _unavailable(backend.name, info.reason)


def _unavailable(name: str, reason: Optional[str]) -> BackendUnavailable:
    return BackendUnavailable(f"backend {name!r} is not installed here: {reason}", backend=name)
