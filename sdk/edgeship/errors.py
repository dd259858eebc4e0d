"""edgeship's exception tree (one base, shared with the device runtime).

    EdgeshipError
    ├── UsageError                the user asked for something impossible
    ├── ModelError                missing, unreadable or unknown model file
    ├── BackendUnavailable        no installed backend for this model on the device
    ├── InputError                inputs do not match the model's signature
    ├── InferenceError            the backend failed on a valid model
    ├── ProtocolError             unexpected bytes on the runtime's pipe
    ├── ConfigError               a targets file or board profile is invalid
    ├── VerificationError         a produced model (compressed, converted, optimized,
    │                             partitioned) did not run on the target, or differs from
    │                             its source beyond tolerance (carries the report)
    └── TargetError               a device could not do what was asked (fleets record it)
        ├── RuntimeCrashed        the runtime process died (exit status, stderr tail)
        ├── RemoteTimeout         an operation ran past its timeout; the process was killed
        ├── ConnectError          the host could not be reached (DNS, refused, timeout)
        ├── AuthenticationError   the host refused our user/keys
        ├── HostKeyError          unknown or changed host key (names host and fingerprint)
        ├── RemoteCommandError    a remote command exited non-zero (command, status, stderr)
        └── DeployError           a deployment could not complete; the active one is intact
            ├── NoSpace           the device refused the upload: it would not fit (deploy/upload.py)
            └── UploadFailed      the transfer broke off (deploy/upload.py)

Device-side errors arrive over the pipe and are rebuilt as the same classes.
"""

from __future__ import annotations

from typing import Any

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
    "AuthenticationError",
    "BackendUnavailable",
    "ConfigError",
    "ConnectError",
    "DeployError",
    "EdgeshipError",
    "HostKeyError",
    "InferenceError",
    "InputError",
    "ModelError",
    "ProtocolError",
    "RemoteCommandError",
    "RemoteTimeout",
    "RuntimeCrashed",
    "TargetError",
    "UsageError",
    "VerificationError",
    "error_from_wire",
]


class ConfigError(EdgeshipError):
    """A targets file, board profile or option file is malformed."""


class VerificationError(EdgeshipError):
    """A produced model failed its check and was not reported as a success: it did not
    load or run on the target, or its outputs differ from its source's beyond tolerance.

    ``report``: what was produced and measured, when there is one (a conversion's report,
    an optimization's, a partition's manifest); ``--force`` keeps a converted model anyway.
    """

    def __init__(self, message: str, report: Any = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.report = report


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
        hint = (
            f" (the device's Python lacks it: run `edgeship setup {target}` or pass --python)"
            if "ModuleNotFoundError" in tail[0]
            else ""
        )
        super().__init__(
            f"{target}: the runtime died during {during} (exit status {status}{detail}): "
            f"{tail[0]}{hint}",
            target=target,
            exit_status=exit_status,
            stderr_tail=stderr_tail,
        )
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


class RemoteTimeout(TargetError):
    """An operation exceeded its timeout; the runtime was killed."""


class ConnectError(TargetError):
    """The device could not be reached."""


class AuthenticationError(TargetError):
    """The device refused the user or every key offered."""


class HostKeyError(TargetError):
    """The device's host key is unknown or differs from known_hosts."""

    def __init__(self, message: str, target: str, fingerprint: str) -> None:
        super().__init__(message, target=target, fingerprint=fingerprint)
        self.fingerprint = fingerprint


class RemoteCommandError(TargetError):
    """A command on the device exited with a non-zero status."""

    def __init__(self, target: str, command: str, status: int, stderr: str) -> None:
        last = (stderr.strip().splitlines() or ["(no stderr)"])[-1]
        super().__init__(
            f"{target}: `{command}` exited with status {status}: {last}",
            target=target,
            command=command,
            exit_status=status,
            stderr_tail=stderr[-4000:],
        )
        self.exit_status = status
        self.stderr = stderr


class DeployError(TargetError):
    """A deployment failed; nothing active on the device was changed."""


def _signal_hint(status: int | None) -> str:
    if status is None:
        return ""
    signals = {-9: "SIGKILL, e.g. the OOM killer", -11: "SIGSEGV", -6: "SIGABRT"}
    signals.update({128 + 9: signals[-9], 128 + 11: signals[-11], 128 + 6: signals[-6]})
    return f", {signals[status]}" if status in signals else ""


for _cls in (
    ConfigError,
    TargetError,
    RemoteTimeout,
    ConnectError,
    AuthenticationError,
    DeployError,
):
    register_wire_type(_cls)
