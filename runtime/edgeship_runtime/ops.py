"""The runtime's operations on JSON-ready arguments: one place for the service and the CLI.

Models stay loaded by handle between requests, so one process can hold several models
(the A/B runner interleaves them; the host re-uses a loaded model across profiles).
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
import time
from collections.abc import Mapping
from typing import Any, Dict, Tuple

import numpy as np

from . import __version__, environment, guards, integrity
from .backends import SessionOptions, backend_names, get_backend
from .environment import pinned
from .errors import UsageError
from .frames import Tensors
from .inputs import (
    Feeds,
    feeds_from_arrays,
    generate_feeds,
    load_arrays,
    named_feeds,
    split_batches,
    validate_feeds,
)
from .measure import (
    DEFAULT_MIN_SECONDS,
    InterleavePolicy,
    MeasurePolicy,
    interleave_runs,
    profile,
)
from .model import LoadedModel, load_model
from .opprofile import OpsPolicy, profile_ops
from .protocol import PROTOCOL_VERSION
from .report import Validity
from .serde import to_jsonable


def encode_tensors(arrays: Mapping[str, np.ndarray]) -> Tensors:
    """Arrays to send: they travel as frames after the message's line (see :mod:`.frames`)."""
    return Tensors(arrays)


def decode_tensors(payload: Any) -> Feeds:
    """The arrays a message carries (its frames), or those of the file it names on the
    device (``{"path": ...}``)."""
    if isinstance(payload, Tensors):
        return dict(payload)
    if isinstance(payload, Mapping) and "path" in payload:
        return load_arrays(str(payload["path"]))
    raise UsageError("tensors must be sent as frames ({'tensors': [...]}) or {'path': ...}")


def _conditions() -> Dict[str, Any]:
    """Temperature (hottest zone, and every zone) and CPU clock now; None where unreadable."""
    zones = environment.thermal_zones()
    return {
        "temperature_c": max(zones.values()) if zones else None,
        "thermal_zones": zones,
        "cpu_freq_mhz": environment.cpu_freq_mhz(),
    }


def _verdict(validity: Validity) -> Dict[str, Any]:
    """A verdict without its device snapshots (an interleave returns one pair for all,
    its ``device``)."""
    validity.before = validity.after = None
    result: Dict[str, Any] = to_jsonable(validity)
    return result


def _cpus(args: Mapping[str, Any]) -> Tuple[int, ...]:
    """The ``cpus`` argument: CPU numbers to pin to (absent or empty: no pinning)."""
    return tuple(int(c) for c in args.get("cpus") or ())


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
            trt_cache=bool(args.get("trt_cache", True)),
            trt_fp16=bool(args.get("trt_fp16", False)),
            idle_spin=bool(args.get("idle_spin", True)),
        )
        if args.get("sha256"):  # what the host deployed: a changed file is refused
            integrity.verify(str(args["path"]), str(args["sha256"]), args.get("companions"))
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
            min_seconds=float(args.get("min_seconds", DEFAULT_MIN_SECONDS)),
            steady=bool(args.get("steady", True)),
            energy=bool(args.get("energy", True)),
            cpus=_cpus(args),
        )
        feeds = self._feeds(model, args)
        if args.get("shards") is not None or args.get("pipeline"):
            from .parallel.profiling import profile_parallel  # imported only when asked for

            return profile_parallel(model, feeds, policy, args).to_dict()
        report = profile(model, feeds, policy, keep_samples=bool(args.get("samples")))
        return report.to_dict()

    def profile_ops(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        """Per-operator times, from a profiling session of its own (see :mod:`.opprofile`)."""
        model = self._model(args)
        policy = OpsPolicy(
            runs=int(args.get("runs", 100)),
            warmup=int(args.get("warmup", 10)),
            trace=bool(args.get("trace")),
        )
        result: Dict[str, Any] = to_jsonable(profile_ops(model, self._feeds(model, args), policy))
        return result

    def conditions(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        """The device's heat, clocks and throttling state now (see :mod:`.guards`)."""
        result: Dict[str, Any] = to_jsonable(guards.snapshot())
        return result

    def run(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        """Outputs for the given inputs; a data set larger than a fixed-batch model's batch
        runs in chunks of that batch, and the outputs are concatenated in order."""
        model = self._model(args)
        signature = model.session.signature
        if args.get("shards") is not None or args.get("request_batch"):
            from .parallel.profiling import run_parallel  # imported only when asked for

            done = run_parallel(model, named_feeds(signature, decode_tensors(args["inputs"])), args)
            return {**done, "outputs": encode_tensors(done["outputs"])}
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

    def interleave(self, args: Mapping[str, Any]) -> Dict[str, Any]:
        """Time several loaded models interleaved in randomized blocks (the A/B design);
        every model's raw samples, the rounds' orders, the device's temperature and CPU
        clock before and after, and its state then (governors, clocks, throttling,
        preemptions: the snapshots every model's verdict was judged on)."""
        handles = [str(h) for h in args.get("handles") or []]
        if not handles or len(set(handles)) != len(handles):
            raise UsageError(f"interleave needs distinct loaded handles, got {handles}")
        models = [self._model({"handle": h}) for h in handles]
        per_handle = args.get("feeds") or {}
        feeds = [
            self._feeds(m, {**args, "inputs": per_handle.get(h) or args.get("inputs")})
            for h, m in zip(handles, models)
        ]
        policy = InterleavePolicy(
            warmup=int(args.get("warmup", 10)),
            block=int(args.get("block", 10)),
            blocks=int(args.get("blocks", 20)),
            seed=int(args.get("seed", 0)),
            min_seconds=float(args.get("min_seconds", 0.0)),
            cpus=_cpus(args),
        )
        with pinned(policy.cpus):
            before, state_before = _conditions(), guards.snapshot()
            t0 = time.perf_counter_ns()
            samples, rounds = interleave_runs(models, feeds, policy)
            wall_s = (time.perf_counter_ns() - t0) / 1e9
            state_after, after = guards.snapshot(), _conditions()
        return {
            "handles": handles,
            "policy": to_jsonable(policy),
            "samples_ms": dict(zip(handles, samples)),
            "rounds": [[handles[i] for i in order] for order in rounds],
            "conditions": {"before": before, "after": after},
            "device": {"before": to_jsonable(state_before), "after": to_jsonable(state_after)},
            "wall_s": wall_s,
            "validity": {
                h: _verdict(guards.judge(s, state_before, state_after, policy.warmup))
                for h, s in zip(handles, samples)
            },
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
