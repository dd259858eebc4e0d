"""Tensors framed after the protocol's lines: every dtype a backend takes, strings without
pickle, and the attacks on the framing (bad descriptors, frames over the board's memory)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship_runtime import frames, protocol, service
from edgeship_runtime.errors import InputError, ProtocolError
from edgeship_runtime.ops import decode_tensors, encode_tensors

from .framed import message_bytes, read_message, read_messages

DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64",
]  # fmt: skip


def round_trip(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    stream = io.BytesIO(message_bytes({"id": 1, "args": {"inputs": encode_tensors(arrays)}}))
    message = read_message(stream)
    assert message is not None and stream.read() == b""
    return decode_tensors(message["args"]["inputs"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_numeric_dtype_crosses_exactly(dtype: str) -> None:
    x = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    back = round_trip({"x": x, "scalar": x[0, 0, 0], "empty": x[:0]})
    for name, sent in (("x", x), ("scalar", np.asarray(x[0, 0, 0])), ("empty", x[:0])):
        assert back[name].dtype == sent.dtype and back[name].shape == sent.shape
        np.testing.assert_array_equal(back[name], sent)


def test_an_empty_set_of_arrays_is_still_framed() -> None:
    """A model without inputs (ONNX's test_constant) is run with none."""
    assert round_trip({}) == {}


def test_strings_cross_as_fixed_width_arrays_from_objects_or_not() -> None:
    words = np.array([["Monday", "été"], ["", "日曜日"]], dtype=object)  # as ONNX Runtime gives
    back = round_trip({"o": words, "u": words.astype(str), "b": np.array([b"a\xff", b""])})
    assert back["o"].dtype.kind == "U" and back["o"].tolist() == words.tolist()
    assert back["u"].tolist() == words.tolist()
    assert back["b"].dtype.kind == "S" and back["b"].tolist() == [b"a\xff", b""]


def test_arrays_are_aligned_views_of_one_buffer_not_copies() -> None:
    back = round_trip({"a": np.ones(3, np.int8), "b": np.ones((5, 5), np.float64)})
    assert _root(back["a"]).obj is _root(back["b"]).obj  # one bytearray under both
    start = np.frombuffer(_root(back["a"]).obj, np.uint8).ctypes.data
    assert all(
        (v.ctypes.data - start) % frames.ALIGN == 0 and v.flags.aligned for v in back.values()
    )


def _root(array: Any) -> Any:
    while isinstance(array, np.ndarray):
        array = array.base
    return array


def test_non_contiguous_arrays_are_sent_in_c_order() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4).T
    np.testing.assert_array_equal(round_trip({"x": x})["x"], x)


@pytest.mark.parametrize(
    "value",
    [np.array([1, "a"], dtype=object), np.zeros(2, [("a", "f4")]), np.zeros(2, "M8[s]")],
    ids=["mixed-objects", "structured", "datetime"],
)
def test_what_cannot_travel_is_refused_before_sending(value: np.ndarray) -> None:
    with pytest.raises(InputError, match="'x'"):
        encode_tensors({"x": value})


def test_a_message_without_arrays_is_one_plain_line() -> None:
    (line,) = frames.pack({"id": 1, "op": "info", "args": {}})
    assert line == protocol.encode({"id": 1, "op": "info", "args": {}})
    assert frames.binary_size(line) is None


# ------------------------------------------------------------------------------ over the service


def serve(data: bytes) -> list[dict[str, Any]]:
    stdout = io.BytesIO()
    assert service.serve(io.BytesIO(data), stdout) == 0
    stdout.seek(0)
    return read_messages(stdout)[1:]  # after the hello


def framed(request_id: int, descriptors: list[dict[str, Any]], blob: bytes) -> bytes:
    """A ``run`` request with hand-written descriptors over ``blob``."""
    body = protocol.encode(
        {
            "id": request_id,
            "op": "run",
            "args": {"handle": "m1", "inputs": {"tensors": descriptors}},
        }
    )
    return f'{{"binary":{len(blob)},'.encode() + body[1:] + blob


INFO = protocol.encode({"id": 9, "op": "info"})


def test_a_string_model_runs_on_string_tensors_both_ways(stopwords_onnx: Path) -> None:
    words = np.array([["the", "Été", "monday"]], dtype=object)
    load, run = serve(
        protocol.encode({"id": 1, "op": "load", "args": {"path": str(stopwords_onnx)}})
        + message_bytes(
            {"id": 2, "op": "run", "args": {"handle": "m1", "inputs": encode_tensors({"x": words})}}
        )
    )
    assert load["ok"], load
    assert run["ok"], run
    assert decode_tensors(run["result"]["outputs"])["y"].tolist() == [["Été", "monday"]]


@pytest.mark.parametrize(
    "descriptor",
    [
        {"name": "x", "dtype": "|O", "shape": [1], "offset": 0},
        {"name": "x", "dtype": "[('a', 'O')]", "shape": [1], "offset": 0},
        {"name": "x", "dtype": "no-such-type", "shape": [1], "offset": 0},
        {"name": "x", "dtype": "<f4", "shape": [1 << 40], "offset": 0},
        {"name": "x", "dtype": "<f4", "shape": [-1], "offset": 0},
        {"name": "x", "dtype": "<f4", "shape": [1], "offset": 62},
        {"name": 3, "dtype": "<f4", "shape": [1], "offset": 0},
        "x",
    ],
    ids=["object", "object-field", "unknown", "huge", "negative", "past-end", "name", "string"],
)
def test_a_bad_descriptor_is_refused_and_serving_goes_on(descriptor: Any) -> None:
    refused, served = serve(framed(1, [descriptor], bytes(64)) + INFO)
    assert refused["id"] == 1 and refused["error"]["type"] == "ProtocolError"
    assert served["id"] == 9 and served["ok"]


def test_frames_over_the_boards_memory_are_dropped_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frames, "available_memory", lambda: (1 << 20, 512 << 20))
    blob = bytes(3 << 20)
    request = framed(1, [{"name": "x", "dtype": "|u1", "shape": [len(blob)], "offset": 0}], blob)
    refused, served = serve(request + INFO)
    assert refused["id"] == 1 and refused["error"]["type"] == "InputError"
    message = refused["error"]["message"]
    assert (
        "3 MiB of tensors do not fit in this board's memory (1 MiB available of 512 MiB)" in message
    )
    assert refused["error"]["details"]["available_bytes"] == 1 << 20
    assert served["id"] == 9 and served["ok"]  # the 3 MiB were skipped, not read as lines


def test_frames_after_a_line_that_is_not_json_are_skipped() -> None:
    refused, served = serve(b'{"binary":8, oops\n' + bytes(8) + INFO)
    assert refused["error"]["type"] == "ProtocolError" and served["ok"]


def test_frames_cut_short_by_the_end_of_input_are_refused() -> None:
    (refused,) = serve(framed(1, [], bytes(64))[:-10])
    assert refused["error"]["type"] == "ProtocolError"
    assert "ended 10 bytes short" in refused["error"]["message"]


def test_read_blob_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames, "available_memory", lambda: (100, None))
    with pytest.raises(InputError, match=r"available of 9\.537e-05 MiB"):
        frames.read_blob(io.BytesIO(bytes(200)), 200)
    with pytest.raises(ProtocolError):
        frames.read_blob(io.BytesIO(bytes(10)), 50)
