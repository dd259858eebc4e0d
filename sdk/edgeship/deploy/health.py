"""Health-checked activation: a new version runs on the device before it becomes active.

``deploy`` hands the store a check (``edgeship.targets.health.health_check``) that the
store runs, under the lock, on the verified blob after the upload and before ``current``
moves: the device's runtime loads the model (with its sha256, see the runtime's
integrity.py), runs it on generated inputs (:class:`HealthPolicy`: seeded, dynamic dims
from ``shapes``), and every float output must be finite; with ``max_latency_ms``, the
median of a few timed runs must be under it too. A model that does not load (random
bytes named ``.onnx``), crashes or hangs the runtime, returns NaN, or is too slow, fails:
the version is recorded with ``state: failed`` and its report, the active version stays
as it was, and the deploy raises :class:`HealthCheckFailed`.

Only what the model is to blame for fails the check; a lost connection is a plain error
(nothing is recorded, nothing activated).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgeship.core.errors import DeployError

__all__ = ["HealthCheckFailed", "HealthReport"]


@dataclass
class HealthReport:
    """What the check saw; ``error`` says why it failed (None: passed)."""

    error: str | None = None
    load_ms: float | None = None
    latency_ms: float | None = None
    outputs: dict[str, list[int]] = field(default_factory=dict)
    checked_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


class HealthCheckFailed(DeployError):
    """A new version failed its health check: recorded as failed, never activated."""

    def __init__(
        self, label: str, name: str, version: str, active: str | None, report: HealthReport
    ) -> None:
        kept = f"{active} stays active" if active else "nothing is active"
        super().__init__(
            f"{label}: {name} {version} failed its health check ({report.error}); {kept}; "
            f"recorded as failed (see `edgeship ls`; --no-health-check skips the check)",
            target=label,
            version=version,
        )
        self.report = report
