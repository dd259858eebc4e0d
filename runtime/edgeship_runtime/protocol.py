"""The runtime's stdio protocol, version 2 — the contract between host and device.

The host starts the runtime (``python3 edgeship-runtime.pyz serve``) in a local
subprocess or over an SSH channel and talks to it with exactly these bytes. The device's
half of each operation is :mod:`.ops`; the host's is ``sdk/edgeship/targets/wire.py``:
a protocol change touches those two modules and this text.

Framing
    UTF-8 JSON, one object per line (``\\n``), on the runtime's stdin and stdout; a
    message that carries arrays starts ``{"binary": N,`` and its line is followed by N
    raw bytes, the arrays' frames (see Tensors below). stderr is free-form diagnostics
    and is never parsed; the host keeps its tail for error reports. Native libraries that
    print to fd 1 are redirected to stderr, so stdout carries protocol bytes only.

Handshake
    On start the runtime writes one hello line before reading anything::

        {"edgeship": "runtime", "protocol": 2, "version": "0.1.0", "pid": 4242, "pgid": 4242,
         "max_line_bytes": 16777216}

    The host refuses a runtime whose ``protocol`` differs from its own, before sending
    anything, with a message to deploy a matching runtime (``edgeship setup``); an older
    host, which knows only its own version, does the same with a newer runtime. Version 2
    moved tensors from base64 inside the line (1) to frames after it. ``pid``/``pgid``
    let the host kill a hung runtime (and its workers) from a second channel;
    ``max_line_bytes`` is the request-line limit below (absent from older runtimes).

Requests and replies
    Request: ``{"id": 7, "op": "profile", "args": {...}}``. Requests are served in order,
    one at a time; each gets exactly one reply with the same ``id``::

        {"id": 7, "ok": true, "result": {...}}
        {"id": 7, "ok": false, "error": {"type": "InputError", "message": "...", "details": {}}}

    ``type`` names a class of :mod:`edgeship_runtime.errors`. ``id`` is an integer or a
    string (or null/absent); any other id is refused.

Malformed requests and limits
    Whatever arrives, the runtime answers and keeps serving: a line that is not UTF-8 JSON
    (``NaN``/``Infinity`` included: JSON has no such values), not an object, an unknown
    ``op``, a bad ``id`` or non-object ``args`` gets a ``ProtocolError`` reply, with the
    request's ``id`` where it could be read and null otherwise. A request line (without
    its ``\\n``) may hold at most ``max_line_bytes`` bytes: 16 MiB by default, set by
    ``serve --max-line-bytes N`` or the environment variable ``EDGESHIP_MAX_LINE_BYTES``
    (the option wins). Tensors are not in the line (they follow it as frames), so the
    limit bounds JSON only. A longer line is never held whole: the runtime reads up to
    the limit, discards the rest up to its newline in bounded chunks, and replies with a
    ``ProtocolError`` naming the limit (``details``: ``limit_bytes``, ``line_bytes``),
    with the ``id`` when the line starts with ``{"id": <integer>`` as the host writes it.

Operations (args → result)
    info      {} → {"runtime": {version, protocol, python, executable},
                    "backends": [BackendInfo...], "environment": Environment}
    load      {path, backend?, threads?, providers?, execution_mode?, graph_optimization?,
               trt_cache?, trt_fp16?, idle_spin?} →
                  {handle, model: ModelInfo, backend: BackendUsage, signature, load_ms}
              ``trt_cache`` (default true): TensorRT's engines kept under the deploy
              root (``ROOT/cache/trt/<sha256>/``); ``trt_fp16`` (default false);
              ``idle_spin`` (default true): false, the threads sleep as a run ends.
              ``backend.providers_not_run``: providers asked for that did not run.
    profile   {handle, warmup?, runs?, min_seconds?, samples?, inputs?, shapes?, seed?,
               steady?, energy?, cpus?} →
                  ProfileReport (schema edgeship.report/1)
              At least ``runs`` (default 100) timed runs and at least ``min_seconds``
              (default 1.0) of them summed. ``cpus``: pin every thread of the runtime to
              these CPU numbers while measuring (absent: no pinning; a CPU the process
              may not use is a UsageError).
              ``steady`` (default true): ``warmup`` is a minimum, the warm-up goes on
              until the rolling median settles. ``energy`` (default true): read the
              power sensors over the timed window (report ``energy``). The report's
              ``validity`` holds the verdict (edgeship_runtime.guards).
              With ``shards: N`` (0: one per core) or ``pipeline: {stages: [path...],
              providers?: [[...]...], threads?: [...], backends?: [...]}``, a stream of
              ``runs`` requests over worker processes instead; optional ``request_batch``
              (cut ``inputs`` into requests), ``baseline`` (default true), ``depth``. The
              report then has a ``parallel`` section (edgeship_runtime.parallel.profiling).
    run       {handle, inputs, shards?, request_batch?} →
                  {outputs: Tensors, latency_ms, calls, parallel?}
              ``shards``: the data set over N worker processes, outputs in order;
              ``request_batch``: run it as requests of that many samples.
    interleave {handles, inputs?, feeds?, shapes?, seed?, warmup?, block?, blocks?,
               min_seconds?, cpus?} →
                  {handles, policy, samples_ms: {handle: [ms...]}, rounds: [[handle...]],
                   conditions: {before, after}, device: {before, after}, wall_s,
                   validity: {handle: Validity}}
              Several loaded models timed in one process (the A/B design): ``warmup``
              untimed runs each, then ``blocks`` rounds, each a random permutation of the
              handles (seeded by ``seed``) in which every model makes ``block``
              consecutive timed runs; rounds go on past ``blocks`` until every model's
              timed runs add up to ``min_seconds`` (default 0: ``blocks`` rounds; a
              runtime older than the argument ignores it, and its reply's ``policy``
              has no ``min_seconds``). ``cpus`` as for ``profile``.
              ``inputs`` feed every model; ``feeds`` maps a
              handle to its own; else inputs are generated per model from ``seed``.
              Block k of a model is ``samples_ms[h][k*block:(k+1)*block]``, run in
              round k. ``before``/``after`` hold ``temperature_c`` (hottest zone),
              ``thermal_zones`` and ``cpu_freq_mhz``, each None/empty where unreadable.
              ``validity`` maps each handle to its verdict on the window (a Validity
              without its device snapshots); ``device: {before, after}`` holds those
              snapshots once for all (DeviceState: governors, clocks, throttle counts,
              ``rpi_throttled``, ``preemptions``...).
    profile_ops {handle, runs?, warmup?, trace?, inputs?, shapes?, seed?} → OpProfile
              Per-operator times from a second, profiling session of the model (the
              handle's own session is never profiled): both warmed up ``warmup`` runs,
              then ``runs`` runs each, in turn. Per node and op type the median; the
              operators' sum against the same runs' end-to-end median (the gap: outside
              operators) and the profiler's overhead against the plain session.
              ``trace``: include the profiler's Chrome trace events. A backend without
              per-operator timing answers ``available: false`` and a ``note``.
    conditions {} → DeviceState: temperatures, governors, CPU clocks and caps, throttle
              counters, ``vcgencmd``/``nvpmodel`` state now (the host polls it to cool
              down before timing).
    unload    {handle} → {}
    shutdown  {} → {} and the runtime exits 0

Tensors (:mod:`edgeship_runtime.frames`)
    A set of arrays (``inputs``, ``feeds[h]``, ``outputs``) is a descriptor
    ``{"tensors": [{"name": "x", "dtype": "<f4", "shape": [2, 3], "offset": 0,
    "nbytes": 24}, ...]}``: each array's C-order bytes at ``offset`` (a multiple of 64)
    of the N bytes that follow the message's line (``"binary": N``, the line's first
    key). Dtype kinds ``b i u f c`` and fixed-width strings (``<U8``, ``|S8``) travel;
    string tensors go as ``U`` arrays; nothing is pickled. The receiver reads the N bytes
    straight into one buffer and the arrays are views on it. Frames larger than the memory
    the runtime's machine has available (``MemAvailable``) are read and dropped without
    being held, and the request gets an ``InputError`` naming that memory (``details``:
    ``needed_bytes``, ``available_bytes``, ``total_bytes``); a descriptor with a bad dtype
    or shape, or outside the N bytes, gets a ``ProtocolError``; serving goes on either
    way. Inputs may instead name an .npz/.npy file on the device, ``{"path": "..."}``
    (object arrays refused). ``shapes`` maps input names to dims for generated inputs,
    e.g. ``{"input": [1, 3, 224, 224]}``.

End
    The runtime exits when stdin closes (after answering what it has read) or after
    ``shutdown``; and at once, even mid-request, with status 141 when nobody reads its
    stdout any more (the host died or its connection closed).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Optional, Union

from . import __version__
from .errors import ProtocolError

PROTOCOL_VERSION = 2
DEFAULT_MAX_LINE_BYTES = 16 << 20
"""The longest request line the runtime reads (bytes, without the newline)."""
MAX_LINE_BYTES_ENV = "EDGESHIP_MAX_LINE_BYTES"

RequestId = Union[int, str, None]


def hello(max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Dict[str, Any]:
    return {
        "edgeship": "runtime",
        "protocol": PROTOCOL_VERSION,
        "version": __version__,
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "max_line_bytes": max_line_bytes,
    }


def check_hello(message: Dict[str, Any]) -> None:
    """Raise unless ``message`` is a hello of our protocol version."""
    if message.get("edgeship") != "runtime":
        raise ProtocolError(f"expected the runtime's hello, got {str(message)[:200]!r}")
    if message.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(
            f"runtime speaks protocol {message.get('protocol')!r}, this host speaks "
            f"{PROTOCOL_VERSION}: deploy a matching runtime (edgeship setup)"
        )


def encode(message: Dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def decode(line: bytes) -> Dict[str, Any]:
    """One JSON object from ``line``; strict JSON (no ``NaN``/``Infinity``)."""
    try:
        message = json.loads(line.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not a UTF-8 line ({exc.reason}): {line[:200]!r}") from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: nested a few thousand deep
        raise ProtocolError(f"not a JSON line ({exc}): {line[:200]!r}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"expected a JSON object, got {line[:200]!r}")
    return message


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def message_id(message: Dict[str, Any]) -> RequestId:
    """The ``id`` of a request: an integer, a string or None; anything else is refused."""
    value = message.get("id")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ProtocolError(
        f"bad request id {str(value)[:100]}: expected an integer or a string",
        id=str(value)[:100],
    )


_LEADING_ID = re.compile(rb'\A\s*\{\s*"id"\s*:\s*(-?[0-9]{1,18})\s*[,}]')


def leading_id(head: bytes) -> Optional[int]:
    """The integer ``id`` a line starts with, as the host writes it (``{"id":7,...``):
    the id of a request too long to be decoded."""
    found = _LEADING_ID.match(head[:200])
    return int(found.group(1)) if found else None


def request(request_id: int, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": request_id, "op": op, "args": args}


def reply_ok(request_id: RequestId, result: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": request_id, "ok": True, "result": result}


def reply_error(request_id: RequestId, error: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": request_id, "ok": False, "error": error}
