"""What a profile or run asks for: validated once, here, then passed around whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.inputs import load_arrays
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.ops import encode_tensors

from .errors import UsageError


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``command`` bounds every single request to the runtime; ``startup`` bounds
    the runtime's start until its hello (imports on a slow board take a few seconds);
    ``unresponsive``: a device that acknowledges nothing for this long (TCP keepalive probes
    included, so an idle wait counts too) is taken as gone — powered off, unplugged —
    instead of being waited for until ``command`` runs out."""

    connect: float = 10.0
    auth: float = 15.0
    command: float = 600.0
    startup: float = 60.0
    unresponsive: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect", "auth", "command", "startup", "unresponsive"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} timeout must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class ProfileConfig:
    """One profile: how to open the session, how to measure, which inputs.

    ``inputs`` is an .npz/.npy on the host; without it inputs are generated on the device
    from the model's signature with ``seed`` and the ``shapes`` of dynamic dims.
    """

    policy: MeasurePolicy = field(default_factory=MeasurePolicy)
    session: SessionOptions = field(default_factory=SessionOptions)
    backend: str | None = None
    inputs: Path | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    samples: bool = False

    def load_args(self, device_path: str) -> dict[str, Any]:
        return {
            "path": device_path,
            "backend": self.backend,
            "threads": self.session.threads,
            "providers": list(self.session.providers),
            "execution_mode": self.session.execution_mode,
            "graph_optimization": self.session.graph_optimization,
        }

    def profile_args(self, handle: str) -> dict[str, Any]:
        args: dict[str, Any] = {
            "handle": handle,
            "warmup": self.policy.warmup,
            "runs": self.policy.runs,
            "min_seconds": self.policy.min_seconds,
            "samples": self.samples,
            "seed": self.seed,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
        }
        if self.inputs is not None:
            args["inputs"] = encode_tensors(load_arrays(str(self.inputs)))
        return args


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

    def __post_init__(self) -> None:
        if self.keep_versions < 1:
            raise UsageError(f"--keep must be at least 1, got {self.keep_versions}")
