"""What a profile or run asks for: validated once, here, then passed around whole."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.core.errors import UsageError

if TYPE_CHECKING:
    from edgeship_runtime.backends import SessionOptions
    from edgeship_runtime.measure import MeasurePolicy

__all__ = [
    "DEFAULT_HEALTH",
    "ConnectOptions",
    "HealthPolicy",
    "ParallelConfig",
    "ProfileConfig",
    "Signing",
    "Timeouts",
    "fit_threads",
]


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``command`` bounds every single request to the runtime; ``startup`` bounds
    the runtime's start until its hello (imports on a slow board take a few seconds);
    ``unresponsive``: a device that acknowledges nothing for this long (TCP keepalive probes
    included, so an idle wait counts too) is taken as gone — powered off, unplugged —
    instead of being waited for until ``command`` runs out; a runtime that has answered
    nothing for this long is looked at, and ended if it is stopped (frozen); a lock
    holder stopped for this long is ended, and its lock taken over."""

    connect: float = 10.0
    auth: float = 15.0
    command: float = 600.0
    startup: float = 60.0
    unresponsive: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect", "auth", "command", "startup", "unresponsive"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} timeout must be positive, got {getattr(self, name)}")


# A profile's defaults are imported when one is configured: what connects and deploys
# (this module's other classes) loads neither numpy nor the measuring code.
def _measure_policy() -> MeasurePolicy:
    from edgeship_runtime.measure import MeasurePolicy

    return MeasurePolicy()


def _session() -> SessionOptions:
    from edgeship_runtime.backends import SessionOptions

    return SessionOptions()


def fit_threads(session: SessionOptions, cpus: Sequence[int], chosen: bool) -> SessionOptions:
    """``session`` for a runtime pinned to ``cpus``: one intra-op thread per CPU where no
    count was ``chosen`` by the user (a backend's default, one per core, or a board's
    would queue its threads behind each other on fewer CPUs, and the verdict would blame
    other work); a chosen count above the CPUs is refused. Unpinned: ``session`` as is."""
    if not cpus:
        return session
    n = len(set(cpus))
    if chosen and session.threads > n:
        raise UsageError(
            f"--threads {session.threads} with --cpus {','.join(map(str, cpus))} ({n} CPU"
            f"{'s' if n > 1 else ''}): the runtime's threads would wait for each other; "
            f"pass --threads {n} or fewer, or more CPUs"
        )
    if session.threads == 0 or session.threads > n:
        return replace(session, threads=n)
    return session


@dataclass(frozen=True)
class ProfileConfig:
    """One profile: how to open the session, how to measure, which inputs.

    ``inputs`` is an .npz/.npy on the host; without it inputs are generated on the device
    from the model's signature with ``seed`` and the ``shapes`` of dynamic dims.
    """

    policy: MeasurePolicy = field(default_factory=_measure_policy)
    session: SessionOptions = field(default_factory=_session)
    backend: str | None = None
    inputs: Path | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    samples: bool = False


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach devices: files to read, trust policy, timeouts, device-side overrides."""

    ssh_config: Path | None = None
    targets_file: Path | None = None
    accept_new_host_keys: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    python: str | None = None
    deploy_root: str | None = None
    keep_versions: int = 3
    progress: bool = False
    lock_wait: float = 60.0
    """Seconds a deploy, rollback or rm waits for another holding the device's lock."""

    def __post_init__(self) -> None:
        for name in ("ssh_config", "targets_file"):  # a str from the Python API is a path
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.keep_versions < 1:
            raise UsageError(f"--keep must be at least 1, got {self.keep_versions}")
        if not self.lock_wait >= 0:
            raise UsageError(f"--lock-wait must be 0 or more seconds, got {self.lock_wait}")


@dataclass(frozen=True)
class ParallelConfig:
    """Shards or a pipeline on one device.

    ``shards``: data-parallel workers (0: as many as the device's cores suggest);
    ``pipeline``: a directory written by ``edgeship partition`` (its ``manifest.json``
    gives the stage order). ``stage_providers`` / ``stage_threads``: one entry per stage
    (e.g. ``(("CUDAExecutionProvider",), ("CPUExecutionProvider",))``). ``request_batch``
    cuts ``--inputs`` into requests of that many samples; ``depth`` is the number of
    requests in flight per worker; ``baseline`` also times one shard or the unsplit model.
    """

    shards: int | None = None
    pipeline: Path | None = None
    request_batch: int | None = None
    depth: int | None = None
    baseline: bool = True
    stage_providers: tuple[tuple[str, ...], ...] | None = None
    stage_threads: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if (self.shards is None) == (self.pipeline is None):
            raise UsageError("give exactly one of --shards N and --pipeline DIR")
        if self.shards is not None and self.shards < 0:
            raise UsageError(f"--shards must be 0 (automatic) or positive, got {self.shards}")
        for name in ("request_batch", "depth"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")
        if self.pipeline is not None and not Path(self.pipeline).is_dir():
            raise UsageError(f"--pipeline {self.pipeline}: not a directory")


@dataclass(frozen=True)
class HealthPolicy:
    """What a new version must do on the device before it is activated.

    ``max_latency_ms``: the median of ``runs`` timed runs (after one warm-up) must be
    below it (None: latency is not gated, and not measured); ``shapes``: dims for
    generated inputs with dynamic dims other than the batch; ``seed``: of those inputs.
    """

    max_latency_ms: float | None = None
    runs: int = 10
    shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"health check runs must be at least 1, got {self.runs}")
        if self.max_latency_ms is not None and not self.max_latency_ms > 0:
            raise UsageError(f"--max-latency must be above 0 ms, got {self.max_latency_ms}")


DEFAULT_HEALTH = HealthPolicy()
"""Load, run once on generated inputs, outputs finite; latency not gated."""


@dataclass(frozen=True)
class Signing:
    """How deployed models are signed: with ``key`` (a private key from ``edgeship
    keygen``) at deploy time, numbered ``release`` (default: the time, in ns), or by a
    release file ``edgeship sign`` wrote beforehand (``signature``: the artifact's own,
    numbered when it was signed). ``allow_downgrade``: let a device take a release older
    than the newest it took for that name."""

    key: Path | None = None
    signature: Path | None = None
    release: int | None = None
    allow_downgrade: bool = False

    def __post_init__(self) -> None:
        if (self.key is None) == (self.signature is None):
            raise UsageError("sign with a key (--sign KEY) or a release file (--signature F)")
        for option, path in (("--sign", self.key), ("--signature", self.signature)):
            if path is not None and not Path(path).is_file():
                raise UsageError(f"{option} {path}: no such file")
        if self.release is not None and self.release < 0:
            raise UsageError(f"--release must be 0 or more, got {self.release}")
