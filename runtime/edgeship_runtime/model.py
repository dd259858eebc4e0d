"""A model file on this device: identify it, hash it, load it with a backend."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .backends import SessionOptions, choose_backend
from .backends.base import Session
from .formats import companion_files, detect_format
from .integrity import sha256_cached, sha256_file
from .memory import PeakRss, current_rss_mb
from .report import BackendUsage, ModelInfo

__all__ = ["LoadedModel", "describe_file", "detect_format", "load_model", "sha256_file"]


def describe_file(path: str) -> ModelInfo:
    """Format, sha256 (of the main file) and size in bytes (with its companion files: an
    ONNX model's external data) of the model at ``path``."""
    fmt = detect_format(path)
    directory = os.path.dirname(path)
    companions = [os.path.join(directory, name) for name in companion_files(path, fmt)]
    size = sum(os.path.getsize(p) for p in (path, *companions))
    return ModelInfo(path=path, sha256=sha256_cached(path), format=fmt, size_bytes=size)


@dataclass
class LoadedModel:
    """A session plus what loading it cost; the unit the runtime keeps by handle."""

    info: ModelInfo
    backend: BackendUsage
    session: Session
    load_ms: float
    rss_before_load_mb: float
    rss_after_load_mb: float
    load_peak_mb: float
    memory_method: str
    first_inference_ms: Optional[float] = None
    extra: Dict[str, object] = field(default_factory=dict)

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        """Run once; the very first run after loading is timed as ``first_inference_ms``."""
        if self.first_inference_ms is not None:
            return self.session.run(feeds)
        t0 = time.perf_counter_ns()
        outputs = self.session.run(feeds)
        self.first_inference_ms = (time.perf_counter_ns() - t0) / 1e6
        return outputs

    def close(self) -> None:
        self.session.close()


def load_model(
    path: str, backend: Optional[str] = None, options: Optional[SessionOptions] = None
) -> LoadedModel:
    options = options or SessionOptions()
    info = describe_file(path)
    engine = choose_backend(info.format, backend)
    version = engine.info().version or "unknown"
    peak = PeakRss()
    rss_before = current_rss_mb()
    peak.start()
    t0 = time.perf_counter_ns()
    session = engine.load(path, options)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    execution = session.execution()
    return LoadedModel(
        info=info,
        backend=BackendUsage(
            name=engine.name,
            version=version,
            threads=options.threads,
            providers=list(execution.get("providers", [])),
            delegates=list(execution.get("delegates", [])),
            providers_not_run=list(execution.get("not_run", [])),
        ),
        session=session,
        load_ms=load_ms,
        rss_before_load_mb=rss_before,
        rss_after_load_mb=current_rss_mb(),
        load_peak_mb=peak.peak_mb(),
        memory_method=peak.method,
        # a profiling session, shards and pipeline stages open the file with the same
        # options (a profiler on default threads would time another session)
        extra={"session_options": options},
    )
