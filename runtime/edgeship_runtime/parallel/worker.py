"""The worker process: one backend session, pinned to its cores, fed slot numbers.

Started by :mod:`multiprocessing` with the ``spawn`` method (backends are not fork-safe
once initialised), it imports this module afresh — from the runtime's zipapp when the
runtime runs from one, since ``sys.path`` travels with the spawn.

Life of a worker, on its ``ctrl`` pipe to the parent (pickled, start-up only)::

    worker → ("ready", info)                 model loaded, cores pinned
    parent → ("probe", feeds, warmup)         run once (+ warm-up) on a template request
    worker → ("probed", outputs)
    parent → ("attach", name, layout, reads, writes)
    worker → ("attached", None)
    ... data phase on inbox/outbox ...
    worker → ("stats", {...})                 when the inbox reaches EOF
    worker → ("error", wire_error)            at any point; the worker then exits 1

Data phase: the inbox carries batches of slot numbers (``array('i')`` bytes); the worker
runs each slot's request, writes its outputs into the slot, stamps start/end times, and
passes the slot numbers on through the outbox (to the next stage or back to the parent),
in batches of at most ``flush`` or whenever it has nothing else queued. EOF on the inbox
means stop: it closes the outbox, so EOF travels down a pipeline.

The worker dies with its parent: ``PR_SET_PDEATHSIG`` where Linux has it, and a watchdog
thread that exits when the parent's end of ``ctrl`` closes.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any, Deque, Dict, List, Tuple

import numpy as np

from ..backends import SessionOptions
from ..errors import EdgeshipError, InferenceError
from ..memory import PeakRss
from ..model import LoadedModel, load_model
from .affinity import die_with_parent, pin
from .shm import SharedSlots, SlotLayout


def worker_main(
    config: Dict[str, Any], ctrl: Connection, inbox: Connection, outbox: Connection
) -> None:
    """Entry point of a worker process (see the module docstring)."""
    die_with_parent(int(config["parent_pid"]))
    try:
        model = _start(config, ctrl)
        attached = _handshake(model, ctrl)
        _watch_parent(ctrl)
        requests = _serve(model, attached, config, inbox, outbox)
    except _NeighbourGone:  # the next stage died: the parent reports that one, not us
        os._exit(NEIGHBOUR_GONE)
    except EdgeshipError as exc:
        _report(ctrl, ("error", exc.to_wire()))
        os._exit(1)
    except Exception as exc:  # a bug or an engine failure: say what, then go
        error = {"type": "InferenceError", "message": f"{type(exc).__name__}: {exc}", "details": {}}
        _report(ctrl, ("error", error))
        os._exit(1)
    _report(ctrl, ("stats", {"requests": requests, "peak_rss_mb": PeakRss().peak_mb()}))
    model.close()


NEIGHBOUR_GONE = 3
"""Exit status of a worker that stopped because the process it feeds died."""


class _NeighbourGone(Exception):
    pass


def _send(outbox: Connection, done: array) -> None:
    try:
        outbox.send_bytes(done)
    except OSError:
        raise _NeighbourGone from None


def _report(ctrl: Connection, message: Tuple[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        ctrl.send(message)


def _start(config: Dict[str, Any], ctrl: Connection) -> LoadedModel:
    cpus = pin(config.get("cpus") or ())
    options = SessionOptions(**config["options"])
    model = load_model(str(config["path"]), config.get("backend"), options)
    info = {
        "pid": os.getpid(),
        "cpus": cpus,
        "load_ms": model.load_ms,
        "backend": {
            "name": model.backend.name,
            "version": model.backend.version,
            "threads": model.backend.threads,
            "providers": model.backend.providers,
            "delegates": model.backend.delegates,
            "providers_not_run": model.backend.providers_not_run,
        },
        "signature": model.session.signature.to_dict(),
        "sha256": model.info.sha256,
    }
    ctrl.send(("ready", info))
    return model


def _handshake(model: LoadedModel, ctrl: Connection) -> _Attached:
    """Answer probes until the parent sends the segment to attach to."""
    while True:
        message = ctrl.recv()
        if message[0] == "probe":
            feeds, warmup = message[1], int(message[2])
            outputs = model.run(feeds)
            for _ in range(warmup):
                model.session.run(feeds)
            names = [spec.name for spec in model.session.signature.outputs]
            ctrl.send(("probed", dict(zip(names, outputs))))
        elif message[0] == "attach":
            _, name, layout, reads, writes = message
            attached = _Attached(
                SharedSlots.attach(name, SlotLayout.from_wire(layout)), reads, writes
            )
            ctrl.send(("attached", None))
            return attached
        else:
            raise InferenceError(f"worker got an unknown command {message[0]!r}")


class _Attached:
    """The attached segment with, per slot, the feeds this worker reads and the areas it writes."""

    def __init__(self, slots: SharedSlots, reads: Dict[str, str], writes: List[Tuple[int, str]]):
        self.slots = slots
        self.feeds = [
            {name: slots.views(s)[area] for name, area in reads.items()}
            for s in range(slots.layout.slots)
        ]
        self.writes = [
            [(i, slots.views(s)[area]) for i, area in writes] for s in range(slots.layout.slots)
        ]

    def close(self) -> None:
        self.feeds, self.writes = [], []
        self.slots.close()


def _watch_parent(ctrl: Connection) -> None:
    """Exit at once when the parent's end of ``ctrl`` closes (the parent died)."""

    def watch() -> None:
        try:
            while True:
                ctrl.recv_bytes()
        except (EOFError, OSError):
            os._exit(1)

    threading.Thread(target=watch, name="edgeship-parent-watch", daemon=True).start()


def _serve(
    model: LoadedModel,
    attached: _Attached,
    config: Dict[str, Any],
    inbox: Connection,
    outbox: Connection,
) -> int:
    """Run slots until EOF on the inbox; returns how many requests this worker ran."""
    run = model.session.run
    stamps = attached.slots.stamps
    start_col = 1 + 2 * int(config["stage"])
    flush = max(1, int(config["flush"]))
    clock = time.monotonic_ns
    pending: Deque[int] = collections.deque()
    done = array("i")
    served = 0
    while True:
        try:
            pending.extend(array("i", inbox.recv_bytes()))
        except EOFError:
            break
        while pending:
            slot = pending.popleft()
            t0 = clock()
            outputs = run(attached.feeds[slot])
            t1 = clock()
            for index, view in attached.writes[slot]:
                _store(view, outputs[index])
            stamps[slot, start_col] = t0
            stamps[slot, start_col + 1] = t1
            done.append(slot)
            served += 1
            if len(done) >= flush or (not pending and not inbox.poll()):
                _send(outbox, done)
                done = array("i")
    if done:
        _send(outbox, done)
    outbox.close()
    attached.close()
    return served


def _store(view: np.ndarray, value: np.ndarray) -> None:
    if value.shape != view.shape:
        raise InferenceError(
            f"an output has shape {list(value.shape)} but requests of this stream produce "
            f"{list(view.shape)}: outputs whose shape varies per request cannot be sharded"
        )
    np.copyto(view, value, casting="no")
