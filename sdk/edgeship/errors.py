"""edgeship's exception tree (one base, shared with the device runtime).

    EdgeshipError
    ├── UsageError                the user asked for something impossible
    ├── ModelError                missing, unreadable or unknown model file
    ├── BackendUnavailable        no installed backend for this model on the device
    ├── InputError                inputs do not match the model's signature
    ├── InferenceError            the backend failed on a valid model
    ├── ProtocolError             unexpected bytes on the runtime's pipe
    ├── ConfigError               a targets file or board profile is invalid
    └── TargetError               a device could not do what was asked (fleets record it)
        ├── RuntimeCrashed        the runtime process died (exit status, stderr tail)
        └── RemoteTimeout         an operation ran past its timeout; the process was killed

Device-side errors arrive over the pipe and are rebuilt as the same classes.
"""

from __future__ import annotations

from edgeship_runtime.errors import (
    BackendUnavailable,
    EdgeshipError,
    InferenceError,
    InputError,
    ModelError,
    ProtocolError,
    UsageError,
    error_from_wire,
    register_wire_type,
)

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "EdgeshipError",
    "InferenceError",
    "InputError",
    "ModelError",
    "ProtocolError",
    "RemoteTimeout",
    "RuntimeCrashed",
    "TargetError",
    "UsageError",
    "error_from_wire",
]


class ConfigError(EdgeshipError):
    """A targets file, board profile or option file is malformed."""


class TargetError(EdgeshipError):
    """A device failed to do what was asked; ``target`` names it."""

    def __init__(self, message: str, target: str = "", **details: object) -> None:
        super().__init__(message, target=target, **details)
        self.target = target


class RuntimeCrashed(TargetError):
    """The runtime process ended unexpectedly (segfault, OOM kill, ...)."""

    def __init__(self, target: str, exit_status: int | None, stderr_tail: str, during: str) -> None:
        status = "unknown" if exit_status is None else str(exit_status)
        detail = _signal_hint(exit_status)
        tail = stderr_tail.strip().splitlines()[-1:] or ["(no stderr)"]
        super().__init__(
            f"{target}: the runtime died during {during} (exit status {status}{detail}): {tail[0]}",
            target=target,
            exit_status=exit_status,
            stderr_tail=stderr_tail,
        )
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


class RemoteTimeout(TargetError):
    """An operation exceeded its timeout; the runtime was killed."""


def _signal_hint(status: int | None) -> str:
    if status is None:
        return ""
    signals = {-9: "SIGKILL, e.g. the OOM killer", -11: "SIGSEGV", -6: "SIGABRT"}
    signals.update({128 + 9: signals[-9], 128 + 11: signals[-11], 128 + 6: signals[-6]})
    return f", {signals[status]}" if status in signals else ""


for _cls in (ConfigError, TargetError, RemoteTimeout):
    register_wire_type(_cls)
