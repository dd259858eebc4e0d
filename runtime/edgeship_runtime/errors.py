"""The one exception tree of edgeship, rooted here so the device and the host share it.

    EdgeshipError
    ├── UsageError              the user asked for something impossible (bad option value)
    ├── ModelError              the model file is missing, unreadable or not a model
    ├── BackendUnavailable      no installed backend can run this model
    ├── InputError              given inputs do not match the model's signature
    ├── InferenceError          the backend failed while running a valid model
    └── ProtocolError           the stdio pipe carried something unexpected

The host SDK derives its own leaves (SSH, deploy, ...) from ``EdgeshipError``. Errors
cross the stdio pipe as ``{"type": <class name>, "message": str, "details": {...}}`` and
are rebuilt on the other side by :func:`error_from_wire`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class EdgeshipError(Exception):
    """Base of every error edgeship raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: Dict[str, Any] = details

    def to_wire(self) -> Dict[str, Any]:
        return {"type": type(self).__name__, "message": self.message, "details": self.details}


class UsageError(EdgeshipError):
    """An option or argument has a value that cannot work."""


class ModelError(EdgeshipError):
    """The model file is missing, unreadable, truncated or in an unknown format."""


class BackendUnavailable(EdgeshipError):
    """The backend that this model needs is not installed on this device."""


class InputError(EdgeshipError):
    """An input is missing, extra, or has the wrong dtype or shape."""


class InferenceError(EdgeshipError):
    """The backend raised while running a model that loaded fine."""


class ProtocolError(EdgeshipError):
    """A message on the runtime's stdio pipe was malformed or of another protocol version."""


_WIRE_TYPES: Dict[str, Type[EdgeshipError]] = {}


def register_wire_type(cls: Type[EdgeshipError]) -> Type[EdgeshipError]:
    """Let errors of ``cls`` be rebuilt by name when they come back over the pipe."""
    _WIRE_TYPES[cls.__name__] = cls
    return cls


for _cls in (
    EdgeshipError,
    UsageError,
    ModelError,
    BackendUnavailable,
    InputError,
    InferenceError,
    ProtocolError,
):
    register_wire_type(_cls)


def error_from_wire(payload: Dict[str, Any], context: Optional[str] = None) -> EdgeshipError:
    """Rebuild an error sent by :meth:`EdgeshipError.to_wire`; unknown types become the base."""
    cls = _WIRE_TYPES.get(str(payload.get("type")), EdgeshipError)
    message = str(payload.get("message", "unknown error"))
    if context:
        message = f"{context}: {message}"
    details = payload.get("details") or {}
    return cls(message, **details)
