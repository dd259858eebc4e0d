"""The runtime's stdio protocol, version 1 — the contract between host and device.

The host starts the runtime (``python3 edgeship-runtime.pyz serve``) in a local
subprocess or over an SSH channel and talks to it with exactly these bytes.

Framing
    UTF-8 JSON, one object per line (``\\n``), on the runtime's stdin and stdout.
    stderr is free-form diagnostics and is never parsed; the host keeps its tail for
    error reports. Native libraries that print to fd 1 are redirected to stderr, so
    stdout carries protocol lines only.

Handshake
    On start the runtime writes one hello line before reading anything::

        {"edgeship": "runtime", "protocol": 1, "version": "0.1.0", "pid": 4242, "pgid": 4242}

    The host refuses a runtime whose ``protocol`` differs from its own. ``pid``/``pgid``
    let the host kill a hung runtime (and its workers) from a second channel.

Requests and replies
    Request: ``{"id": 7, "op": "profile", "args": {...}}``. Requests are served in order,
    one at a time; each gets exactly one reply with the same ``id``::

        {"id": 7, "ok": true, "result": {...}}
        {"id": 7, "ok": false, "error": {"type": "InputError", "message": "...", "details": {}}}

    ``type`` names a class of :mod:`edgeship_runtime.errors`.

Operations (args → result)
    info      {} → {"runtime": {version, protocol, python, executable},
                    "backends": [BackendInfo...], "environment": Environment}
    load      {path, backend?, threads?, providers?} →
                  {handle, model: ModelInfo, backend: BackendUsage, signature, load_ms}
    profile   {handle, warmup?, runs?, min_seconds?, samples?, inputs?, shapes?, seed?} →
                  ProfileReport (schema edgeship.report/1)
              With ``shards: N`` (0: one per core) or ``pipeline: {stages: [path...],
              providers?: [[...]...], threads?: [...], backends?: [...]}``, a stream of
              ``runs`` requests over worker processes instead; optional ``request_batch``
              (cut ``inputs`` into requests), ``baseline`` (default true), ``depth``. The
              report then has a ``parallel`` section (edgeship_runtime.parallel.profiling).
    run       {handle, inputs, shards?, request_batch?} →
                  {outputs: Tensors, latency_ms, calls, parallel?}
              ``shards``: the data set over N worker processes, outputs in order;
              ``request_batch``: run it as requests of that many samples.
    interleave {handles, inputs?, feeds?, shapes?, seed?, warmup?, block?, blocks?} →
                  {handles, policy, samples_ms: {handle: [ms...]}, rounds: [[handle...]],
                   conditions: {before, after}, wall_s}
              Several loaded models timed in one process (the A/B design): ``warmup``
              untimed runs each, then ``blocks`` rounds, each a random permutation of the
              handles (seeded by ``seed``) in which every model makes ``block``
              consecutive timed runs. ``inputs`` feed every model; ``feeds`` maps a
              handle to its own; else inputs are generated per model from ``seed``.
              Block k of a model is ``samples_ms[h][k*block:(k+1)*block]``, run in
              round k. ``before``/``after`` hold ``temperature_c`` (hottest zone),
              ``thermal_zones`` and ``cpu_freq_mhz``, each None/empty where unreadable.
    unload    {handle} → {}
    shutdown  {} → {} and the runtime exits 0

    Tensors travel as ``{"npz_b64": <base64 of an .npz>}``; inputs may instead name a
    file on the device, ``{"path": "..."}``. ``shapes`` maps input names to dims for
    generated inputs, e.g. ``{"input": [1, 3, 224, 224]}``.

End
    The runtime exits when stdin closes (after answering what it has read) or after
    ``shutdown``; and at once, even mid-request, with status 141 when nobody reads its
    stdout any more (the host died or its connection closed).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from . import __version__
from .errors import ProtocolError

PROTOCOL_VERSION = 1


def hello() -> Dict[str, Any]:
    return {
        "edgeship": "runtime",
        "protocol": PROTOCOL_VERSION,
        "version": __version__,
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
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
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"not a JSON line: {line[:200]!r}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"expected a JSON object, got {line[:200]!r}")
    return message


def request(request_id: int, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": request_id, "op": op, "args": args}


def reply_ok(request_id: Any, result: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": request_id, "ok": True, "result": result}


def reply_error(request_id: Any, error: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": request_id, "ok": False, "error": error}
