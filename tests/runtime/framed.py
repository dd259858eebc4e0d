"""Protocol messages as bytes and back, frames included, for tests that talk to a runtime."""

from __future__ import annotations

import json
from typing import IO, Any

from edgeship_runtime import frames


def message_bytes(message: dict[str, Any]) -> bytes:
    """``message``'s line and its frames (:func:`edgeship_runtime.frames.pack`)."""
    return b"".join(frames.pack(message))


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message of ``stream``, its frames unpacked; None at EOF."""
    line = stream.readline()
    if not line:
        return None
    message: dict[str, Any] = json.loads(line)
    size = frames.binary_size(line)
    if size is None:
        return message
    unpacked: dict[str, Any] = frames.unpack(message, frames.read_blob(stream, size))
    return unpacked


def read_messages(stream: IO[bytes]) -> list[dict[str, Any]]:
    """Every message up to EOF."""
    return list(iter(lambda: read_message(stream), None))
