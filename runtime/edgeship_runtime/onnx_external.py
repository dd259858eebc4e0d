"""The files an ONNX model keeps its external data in, read with the stdlib alone.

``onnx.save(..., save_as_external_data=True)`` moves tensor bytes into files beside the
model; each such tensor names its file in ``external_data["location"]``, relative to the
model's directory. This walks the protobuf wire format over a memory map, descending only
into the messages that can hold tensors (graphs, nodes, attributes, sparse tensors,
functions) and stepping over everything else, tensor bytes included: a large model with
inline weights costs a few field headers per tensor, not a read of its weights.

A file that is not valid protobuf yields what was found before the damage: loading it is
what reports the error, with the backend's own words.
"""

from __future__ import annotations

import mmap
from typing import Dict, List, Set, Tuple

_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _ENTRY = range(8)

# message kind -> {field number: kind of the sub-message it holds}
_CHILDREN: Dict[int, Dict[int, int]] = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _FUNCTION: {7: _NODE},
}
_EXTERNAL_DATA = 13  # TensorProto.external_data: repeated StringStringEntryProto
_DATA_LOCATION = 14  # TensorProto.data_location: EXTERNAL = 1
_EXTERNAL = 1
_MAX_DEPTH = 64  # nested subgraphs; deeper is a crafted file, not a model


class _Malformed(Exception):
    pass


def external_data_files(path: str) -> List[str]:
    """The ``location`` of every tensor stored outside ``path``, each once, in file order."""
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return []
    found: Dict[str, None] = {}
    try:
        _walk(buf, 0, len(buf), _MODEL, 0, found)
    except _Malformed:
        pass
    finally:
        buf.close()
    return list(found)


def _walk(
    buf: mmap.mmap, pos: int, end: int, kind: int, depth: int, found: Dict[str, None]
) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed()
    children = _CHILDREN.get(kind, {})
    locations: Set[str] = set()
    external = False
    while pos < end:
        key = buf[pos]  # a one-byte tag is the common case: no call for it
        if 8 <= key < 0x80:
            field, wire, pos = key >> 3, key & 7, pos + 1
        else:
            field, wire, pos = _tag(buf, pos, end)
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            external = external or (
                kind == _TENSOR and field == _DATA_LOCATION and value == _EXTERNAL
            )
        elif wire == 2:
            if pos < end and buf[pos] < 0x80:
                stop = pos + 1 + buf[pos]
                pos += 1
            else:
                length, pos = _varint(buf, pos, end)
                stop = pos + length
            if stop > end:
                raise _Malformed()
            if field in children:
                _walk(buf, pos, stop, children[field], depth + 1, found)
            elif kind == _TENSOR and field == _EXTERNAL_DATA:
                entry, text = _entry(buf, pos, stop)
                if entry == "location":
                    locations.add(text)
            pos = stop
        else:
            pos = _skip(wire, pos, end)
    if external:
        for location in sorted(locations):
            found.setdefault(location, None)


def _entry(buf: mmap.mmap, pos: int, end: int) -> Tuple[str, str]:
    """A StringStringEntryProto: (key, value)."""
    strings = {1: "", 2: ""}
    while pos < end:
        field, wire, pos = _tag(buf, pos, end)
        if wire != 2:
            pos = _skip(wire, pos, end)
            continue
        length, pos = _varint(buf, pos, end)
        if pos + length > end:
            raise _Malformed()
        if field in strings:
            try:
                strings[field] = buf[pos : pos + length].decode("utf-8")
            except UnicodeDecodeError:
                raise _Malformed() from None
        pos += length
    return strings[1], strings[2]


def _tag(buf: mmap.mmap, pos: int, end: int) -> Tuple[int, int, int]:
    key, pos = _varint(buf, pos, end)
    if key >> 3 == 0:
        raise _Malformed()
    return key >> 3, key & 7, pos


def _varint(buf: mmap.mmap, pos: int, end: int) -> Tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Malformed()


def _skip(wire: int, pos: int, end: int) -> int:
    """Past a fixed-size field; groups (wire types 3 and 4) never occur in ONNX."""
    width = {1: 8, 5: 4}.get(wire)
    if width is None or pos + width > end:
        raise _Malformed()
    return pos + width
