"""The health check a deploy runs on a new version before activating it (see
:mod:`edgeship.deploy.health` for what it judges): load the verified blob in the
device's runtime, run it on generated inputs, optionally time it."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from edgeship.core.config import HealthPolicy, ProfileConfig
from edgeship.core.errors import (
    BackendUnavailable,
    EdgeshipError,
    InferenceError,
    InputError,
    ModelError,
    ProtocolError,
    RemoteTimeout,
    RuntimeCrashed,
    UsageError,
)
from edgeship.deploy.health import HealthReport
from edgeship.targets.base import Target
from edgeship.targets.loaded import Loaded
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.measure import MeasurePolicy

__all__ = ["MODEL_FAILURES", "health_check"]

# what a model can be blamed for; anything else (a lost connection) is no verdict on it
MODEL_FAILURES = (
    BackendUnavailable,
    InferenceError,
    InputError,
    ModelError,
    ProtocolError,
    RemoteTimeout,
    RuntimeCrashed,
    UsageError,
)


def health_check(
    target: Target,
    device_path: str,
    digests: tuple[str, dict[str, str]],
    policy: HealthPolicy,
) -> HealthReport:
    """Load ``device_path`` in ``target``'s runtime (checking ``digests``: the main file's
    sha256 and its companions'), run it, judge it (see the module docstring)."""
    started = time.perf_counter()
    report = HealthReport()
    try:
        loaded = target.load_staged(device_path, ProfileConfig(), digests)
        report.load_ms = loaded.reply.load_ms
        try:
            _exercise(loaded, policy, report)
        finally:  # Loaded sends no unload after a crash, a timeout, a lost connection
            with contextlib.suppress(EdgeshipError):
                loaded.unload()
    except MODEL_FAILURES as exc:
        report.error = _one_line(exc)
    report.checked_s = time.perf_counter() - started
    return report


def _exercise(loaded: Loaded, policy: HealthPolicy, report: HealthReport) -> None:
    shapes = {k: tuple(v) for k, v in policy.shapes.items()}
    feeds = generate_feeds(loaded.signature, shapes, seed=policy.seed)
    outputs = loaded.run(feeds)
    report.outputs = {name: list(a.shape) for name, a in outputs.items()}
    bad = [n for n, a in outputs.items() if a.dtype.kind in "fc" and not np.isfinite(a).all()]
    if bad:
        report.error = f"output {', '.join(bad)} is not finite (NaN or infinity)"
        return
    if policy.max_latency_ms is None:
        return
    config = ProfileConfig(policy=MeasurePolicy(warmup=1, runs=policy.runs, min_seconds=0.0))
    measured = loaded.profile(config, inputs=feeds)
    report.latency_ms = measured.latency_ms.p50 if measured.latency_ms else None
    if report.latency_ms is not None and report.latency_ms > policy.max_latency_ms:
        report.error = (
            f"median latency {report.latency_ms:.3g} ms is above --max-latency "
            f"{policy.max_latency_ms:g} ms"
        )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
