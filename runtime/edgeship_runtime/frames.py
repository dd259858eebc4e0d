"""Tensors on the wire: raw bytes framed after a message's JSON line (protocol 2).

A message that carries arrays starts ``{"binary": N, ...`` and its line is followed by N
bytes; wherever a set of arrays belongs (``inputs``, ``feeds``, ``outputs``) it holds a
descriptor ``{"tensors": [{"name", "dtype", "shape", "offset", "nbytes"}, ...]}`` whose
arrays are C-order bytes at ``offset`` (64-byte aligned) of those N. ``binary`` comes
first so that a reader that does not parse JSON (the host's stream reader) finds it.

Only numbers, booleans and strings travel: dtype kinds ``b i u f c`` and fixed-width
``U``/``S``. An object array of ``str`` (what ONNX Runtime returns for a string tensor) is
sent as the fixed-width ``U`` array of the same strings; any other object array is refused
(nothing is ever pickled or unpickled). The receiver reads the N bytes into one buffer
(``readinto``, refused first when they exceed the memory available) and the arrays are
views on it: no base64, no copy.
"""

from __future__ import annotations

import json
import re
from typing import Any, BinaryIO, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from .errors import InputError, ProtocolError
from .memory import available_memory

ALIGN = 64
"""Every array's offset is a multiple of this (bytes): aligned for any dtype and SIMD."""
SAFE_KINDS = "biufcUS"
_DISCARD_CHUNK = 1 << 20
_HEAD = re.compile(rb'\A\{\s*"binary"\s*:\s*([0-9]{1,15})\s*[,}]')

Buffer = Union[bytes, memoryview]


class Tensors(Mapping[str, np.ndarray]):
    """Arrays by name that travel as frames; object arrays of strings become ``U`` arrays,
    any other object array is an :class:`InputError` naming it."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._arrays = {str(k): _c_order(wire_array(k, v)) for k, v in arrays.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def wire_array(name: str, array: Any) -> np.ndarray:
    """``array`` as it can travel (see the module's text), or an :class:`InputError`."""
    array = np.asarray(array)
    if array.dtype.kind == "O":
        values = array.ravel().tolist()
        for kind in (str, bytes):
            if all(isinstance(v, kind) for v in values):
                return np.array(values, dtype=kind).reshape(array.shape)
        kinds = sorted({type(v).__name__ for v in values})
        raise InputError(
            f"array {name!r} holds Python objects ({', '.join(kinds)}): only numbers, booleans "
            "and strings travel",
            input=name,
        )
    if array.dtype.kind not in SAFE_KINDS or array.dtype.fields is not None:
        raise InputError(f"array {name!r}: dtype {array.dtype} cannot travel", input=name)
    return array


def _c_order(array: np.ndarray) -> np.ndarray:
    return array if array.flags.c_contiguous else array.copy(order="C")


def pack(message: Dict[str, Any]) -> List[Buffer]:
    """The bytes of ``message``: its JSON line, then the frames of every :class:`Tensors`
    in it (written as they are, without a copy). ValueError for NaN, TypeError for a value
    JSON cannot carry."""
    frames: List[Buffer] = []
    size = 0
    framed = False

    def describe(value: Any) -> Dict[str, Any]:
        nonlocal size, framed
        if not isinstance(value, Tensors):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        framed = True  # even with no bytes (no arrays, or empty ones): the receiver unpacks
        described = []
        for name, array in value.items():
            pad = -size % ALIGN
            if pad:
                frames.append(bytes(pad))
            data = array.reshape(-1).view(np.uint8).data
            described.append(
                {
                    "name": name,
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                    "offset": size + pad,
                    "nbytes": data.nbytes,
                }
            )
            frames.append(data)
            size += pad + data.nbytes
        return {"tensors": described}

    body = json.dumps(message, separators=(",", ":"), allow_nan=False, default=describe)
    if framed:
        body = f'{{"binary":{size}' + ("," + body[1:] if body != "{}" else "}")
    return [(body + "\n").encode("utf-8"), *frames]


def write(stream: BinaryIO, parts: List[Buffer]) -> None:
    """Write a message's ``parts`` (:func:`pack`) whole, short writes of a raw stream
    included."""
    for part in parts:
        view = memoryview(part)
        while view.nbytes:
            written = stream.write(view)
            view = view[written if written is not None else view.nbytes :]
    stream.flush()


def binary_size(line: bytes) -> Optional[int]:
    """The N of a line that starts ``{"binary":N``; None for a line without frames."""
    found = _HEAD.match(line)
    return int(found.group(1)) if found else None


def read_blob(stream: Any, size: int, side: str = "board") -> bytearray:
    """The ``size`` bytes after a line, read from ``stream`` (anything with ``readinto``)
    straight into one buffer; an
    :class:`InputError` naming ``side``'s memory (the bytes then skipped) when they exceed
    what it has available; a :class:`ProtocolError` when the stream ends before them."""
    available, total = available_memory()
    if available is not None and size > available:
        skip(stream, size)
        raise InputError(
            f"{_mib(size)} of tensors do not fit in this {side}'s memory ({_mib(available)} "
            f"available of {_mib(total or available)}): send fewer samples per request, or "
            "put the data on the device and name it ({'path': ...})",
            needed_bytes=size,
            available_bytes=available,
            total_bytes=total,
        )
    blob = bytearray(size)
    view = memoryview(blob)
    done = 0
    while done < size:
        count = stream.readinto(view[done:])
        if not count:
            raise ProtocolError(f"the stream ended {size - done} bytes short of its frames")
        done += count
    return blob


def skip(stream: Any, size: int) -> None:
    """Read and drop ``size`` bytes, a bounded chunk at a time."""
    chunk = memoryview(bytearray(min(size, _DISCARD_CHUNK)))
    while size > 0:
        count = stream.readinto(chunk[: min(size, len(chunk))])
        if not count:
            return
        size -= count


def unpack(value: Any, blob: bytearray) -> Any:
    """``value`` (a decoded message or part of one) with every tensors descriptor replaced
    by its :class:`Tensors`, views on ``blob``."""
    if isinstance(value, dict):
        if set(value) == {"tensors"} and isinstance(value["tensors"], list):
            return Tensors(dict(_array(d, blob) for d in value["tensors"]))
        return {k: unpack(v, blob) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack(v, blob) for v in value]
    return value


def _array(described: Any, blob: bytearray) -> Tuple[str, np.ndarray]:
    """One descriptor's array, checked against its dtype, shape and the frames' bounds."""
    if not isinstance(described, dict):
        raise ProtocolError(f"bad tensor descriptor {str(described)[:100]}")
    name, shape, offset = described.get("name"), described.get("shape"), described.get("offset")
    if not (
        isinstance(name, str)
        and isinstance(shape, list)
        and isinstance(offset, int)
        and _counts([offset, *shape])
    ):
        raise ProtocolError(f"bad tensor descriptor {str(described)[:200]}")
    try:
        dtype = np.dtype(str(described.get("dtype")))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"tensor {name[:100]!r}: bad dtype ({exc})") from None
    if dtype.kind not in SAFE_KINDS or dtype.fields is not None or dtype.itemsize == 0:
        raise ProtocolError(f"tensor {name[:100]!r}: dtype {dtype.str} cannot travel")
    count = 1
    for dim in shape:
        count *= dim
    if count == 0:
        return name, np.empty(shape, dtype)
    if offset + count * dtype.itemsize > len(blob):
        raise ProtocolError(
            f"tensor {name[:100]!r} ({dtype.str} {shape}) lies outside the {len(blob)} bytes "
            "of its message's frames"
        )
    return name, np.frombuffer(blob, dtype, count, offset).reshape(shape)


def _counts(values: List[Any]) -> bool:
    """Whether every one of ``values`` is a non-negative int (not a bool)."""
    return all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)


def _mib(count: int) -> str:
    return f"{count / (1 << 20):.4g} MiB"
