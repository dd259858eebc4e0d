"""The runtime's operations on JSON-ready arguments: one place for the service and the CLI.

Models stay loaded by handle between requests, so one process can hold several models
(the A/B runner interleaves them; the host re-uses a loaded model across profiles).
"""

from __future__ import annotations

import base64
import itertools
import os
import platform
import sys
import time
from collections.abc import Mapping
from typing import Any, Dict

import numpy as np

from . import __version__, environment
from .backends import SessionOptions, backend_names, get_backend
from .errors import UsageError
from .inputs import (
    Feeds,
    arrays_from_npz_bytes,
    arrays_to_npz_bytes,
    feeds_from_arrays,
    generate_feeds,
    load_arrays,
    named_feeds,
    split_batches,
    validate_feeds,
)
from .measure import MeasurePolicy, profile
from .model import LoadedModel, load_model
from .protocol import PROTOCOL_VERSION
from .serde import to_jsonable


def encode_tensors(arrays: Mapping[str, np.ndarray]) -> Dict[str, str]:
    return {"npz_b64": base64.b64encode(arrays_to_npz_bytes(arrays)).decode("ascii")}


def decode_tensors(payload: Mapping[str, Any]) -> Feeds:
    if "npz_b64" in payload:
        return arrays_from_npz_bytes(base64.b64decode(payload["npz_b64"]))
    if "path" in payload:
        return load_arrays(str(payload["path"]))
    raise UsageError("tensors must be given as {'npz_b64': ...} or {'path': ...}")


class Runtime:
    """Loaded models by handle, and the operations of the stdio protocol."""

    def __init__(self) -> None:
        self._models: Dict[str, LoadedModel] = {}
        self._ids = itertools.count(1)

    def info(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        return {
            "runtime": {
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "python": platform.python_version(),
                "executable": sys.executable,
                "pid": os.getpid(),
            },
            "backends": [get_backend(name).info().to_dict() for name in backend_names()],
            "environment": to_jsonable(environment.collect()),
        }

    def load(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        options = SessionOptions(
            threads=int(args.get("threads") or 0),
            providers=tuple(args.get("providers") or ()),
            execution_mode=str(args.get("execution_mode") or "sequential"),
            graph_optimization=str(args.get("graph_optimization") or "all"),
        )
        model = load_model(str(args["path"]), args.get("backend"), options)
        handle = f"m{next(self._ids)}"
        self._models[handle] = model
        return {
            "handle": handle,
            "model": to_jsonable(model.info),
            "backend": to_jsonable(model.backend),
            "signature": model.session.signature.to_dict(),
            "load_ms": model.load_ms,
        }

    def profile(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        model = self._model(args)
        policy = MeasurePolicy(
            warmup=int(args.get("warmup", 10)),
            runs=int(args.get("runs", 100)),
            min_seconds=float(args.get("min_seconds", 0.0)),
        )
        feeds = self._feeds(model, args)
        report = profile(model, feeds, policy, keep_samples=bool(args.get("samples")))
        return report.to_dict()

    def run(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        """Outputs for the given inputs; a data set larger than a fixed-batch model's batch
        runs in chunks of that batch, and the outputs are concatenated in order."""
        model = self._model(args)
        signature = model.session.signature
        chunks = split_batches(signature, named_feeds(signature, decode_tensors(args["inputs"])))
        for chunk in chunks:
            validate_feeds(signature, chunk)
        t0 = time.perf_counter_ns()
        results = [model.run(chunk) for chunk in chunks]
        latency_ms = (time.perf_counter_ns() - t0) / 1e6
        outputs = [
            np.concatenate(parts) if len(chunks) > 1 else parts[0] for parts in zip(*results)
        ]
        names = [spec.name for spec in signature.outputs]
        return {
            "outputs": encode_tensors(dict(zip(names, outputs))),
            "latency_ms": latency_ms,
            "calls": len(chunks),
        }

    def unload(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        self._model(args).close()
        del self._models[str(args["handle"])]
        return {}

    def close(self) -> None:
        for model in self._models.values():
            model.close()
        self._models.clear()

    def _model(self, args: Mapping[str, Any]) -> LoadedModel:
        handle = str(args.get("handle"))
        if handle not in self._models:
            raise UsageError(f"no loaded model with handle {handle!r}")
        return self._models[handle]

    @staticmethod
    def _feeds(model: LoadedModel, args: Mapping[str, Any]) -> Feeds:
        signature = model.session.signature
        if args.get("inputs"):
            return feeds_from_arrays(signature, decode_tensors(args["inputs"]))
        shapes = {k: tuple(v) for k, v in (args.get("shapes") or {}).items()}
        return generate_feeds(signature, shapes, seed=int(args.get("seed", 0)))
