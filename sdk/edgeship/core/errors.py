"""edgeship's exception tree (one base, shared with the device runtime).

    EdgeshipError
    ├── UsageError                the user asked for something impossible
    ├── ModelError                missing, unreadable or unknown model file
    ├── BackendUnavailable        no installed backend for this model on the device
    ├── InputError                inputs do not match the model's signature
    ├── InferenceError            the backend failed on a valid model
    ├── ProtocolError             unexpected bytes on the runtime's pipe
    ├── ConfigError               a targets file or board profile is invalid
    ├── CompressionError          a compression method could not produce a sound model
    │   ├── UnsupportedPattern    the graph has a construct the method refuses (names the node)
    │   ├── NothingToPrune        no layer of the model can be pruned (says why for each)
    │   ├── FidelityCollapse      (compress/guard.py) the result no longer computes what its
    │   │                         base does
    │   ├── NoChange              (compress/guard.py) the method changed nothing
    │   │   └── NothingToConvert  the model holds nothing the method converts
    │   └── Larger                (compress/guard.py) the result is larger than its base
    ├── ConversionError           a model could not be converted, optimized or split
    │   ├── UnsupportedOpError    the graph uses ops the converter lacks (names them)
    │   └── PartitionError        the graph cannot be cut as asked (control flow, too few nodes)
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
            ├── UploadFailed      the transfer broke off (deploy/upload.py)
            ├── SignatureRefused  the device's trust key does not admit a version: unsigned,
            │                     wrongly signed, tampered, a downgrade, or no way to check
            │                     (deploy/signing.py)
            └── LinkRefused       a symbolic link under the deploy root (names it and where
                                  it points; deploy/contained.py)

Device-side errors arrive over the pipe and are rebuilt as the same classes. A bad option
or bad data raises at once, before any work; a produced model that fails to run is never
reported as a success.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
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
    "Cause",
    "CompressionError",
    "ConfigError",
    "ConnectError",
    "ConversionError",
    "DeployError",
    "EdgeshipError",
    "HostKeyError",
    "InferenceError",
    "InputError",
    "ModelError",
    "NothingToPrune",
    "PartitionError",
    "ProtocolError",
    "RemoteCommandError",
    "RemoteTimeout",
    "RuntimeCrashed",
    "TargetError",
    "UnsupportedOpError",
    "UnsupportedPattern",
    "UsageError",
    "VerificationError",
    "cause_of",
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


class CompressionError(EdgeshipError):
    """A compression method failed on a valid request."""


class UnsupportedPattern(CompressionError):
    """A node the method cannot handle; ``node`` and ``op_type`` name it."""

    def __init__(self, node: str, op_type: str, why: str) -> None:
        super().__init__(f"node {node!r} ({op_type}): {why}", node=node, op_type=op_type)
        self.node = node
        self.op_type = op_type


class NothingToPrune(CompressionError):
    """Every candidate layer was ruled out; ``reasons`` maps layer → why."""

    def __init__(self, reasons: dict[str, str]) -> None:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or "no weights"
        super().__init__(f"nothing to prune ({listed})", reasons=dict(reasons))
        self.reasons = dict(reasons)


class ConversionError(EdgeshipError):
    """A conversion, optimization or partition could not be done; ``step`` says which."""

    def __init__(self, message: str, step: str = "", **details: Any) -> None:
        super().__init__(message, step=step, **details)
        self.step = step


class UnsupportedOpError(ConversionError):
    """The source graph uses operators that the converter on this path cannot handle."""

    def __init__(self, converter: str, ops: Sequence[str], step: str = "") -> None:
        listed = ", ".join(sorted(set(ops)))
        super().__init__(
            f"{converter} cannot convert op(s): {listed}",
            step=step,
            converter=converter,
            ops=sorted(set(ops)),
        )
        self.converter = converter
        self.ops = sorted(set(ops))


class PartitionError(ConversionError):
    """The graph cannot be split as asked."""


@dataclass(frozen=True)
class Cause:
    """Where a third-party library's exception came from, to say in one line.

    ``library``: the top-level package of the outermost frame outside edgeship (the one
    edgeship called; ``""``: none); ``node`` and ``op_type``: the ONNX node a frame was handling
    (a local named ``node`` holding a NodeProto: the loops of ONNX Runtime's quantizer
    and of onnxconverter-common; or as ONNX Runtime's message names it), ``""`` when
    none was; ``text``: ``Type: message`` (its first lines, joined).
    """

    library: str
    node: str
    op_type: str
    text: str

    def where(self) -> str:
        """``in onnxruntime at node 'conv1' (Conv)``, as much of it as is known."""
        parts = [f"in {self.library}"] if self.library else []
        if self.node or self.op_type:
            name = f"node {self.node!r}" if self.node else "a node"
            parts.append(f"at {name}" + (f" ({self.op_type})" if self.op_type else ""))
        return " ".join(parts)


def cause_of(exc: BaseException) -> Cause:
    """The :class:`Cause` of ``exc``, read from its message and traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = " ".join(lines[:_LINES])  # ONNX Runtime says the dims on the second line
    said = said if len(said) <= _CHARS else said[: _CHARS - 1] + "…"
    text = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    node, op_type = "", ""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]  # outermost first
    packages = [str(f.f_globals.get("__name__", "")).partition(".")[0] for f in frames]
    library = next((p for p in packages if p not in _OURS), "")
    for frame in reversed(frames):
        held: Any = frame.f_locals.get("node")
        if not op_type and hasattr(held, "op_type") and hasattr(held, "name"):
            node, op_type = str(held.name), str(held.op_type)
    named = next(filter(None, (p.search(str(exc)) for p in _NODE_OP)), None)
    if not op_type and named:
        node, op_type = named.group("node").strip(), named.group("op").strip()
    return Cause(library, node, op_type, text)


_LINES, _CHARS = 3, 400
"""How much of a library's message the line keeps: its first lines, this many characters."""
_OURS = ("", "edgeship", "edgeship_runtime", "builtins")
_NODE_OP = (
    re.compile(r"Node \((?P<node>[^)]*)\) Op \((?P<op>[^)]*)\)"),
    re.compile(r"running (?P<op>\w+) node\. Name:'(?P<node>[^']*)'"),
)
"""How ONNX Runtime names a node in its errors: ``Node (conv1) Op (Conv)`` when it loads
a model, ``running Conv node. Name:'conv1'`` when it runs one."""
