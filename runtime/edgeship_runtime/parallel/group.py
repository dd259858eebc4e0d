"""Starting, watching and stopping a group of worker processes (the parent's side).

A group is either independent shards (each worker reads from and answers to the parent)
or a chain (the parent feeds worker 0, worker k feeds worker k+1, the last answers to the
parent). Either way the parent holds one *route* per entry point: the pipe it writes slot
numbers to and the pipe finished slot numbers come back on.

Failure is never silent: every wait includes each worker's process sentinel and its
``ctrl`` pipe, so a worker that dies (or reports an error) ends the run with
:class:`WorkerCrashed` (or the error it reported), after which :meth:`WorkerGroup.close`
kills what is left — no orphans, no hang.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..backends import SessionOptions
from ..errors import EdgeshipError, InferenceError, error_from_wire, register_wire_type
from .worker import NEIGHBOUR_GONE, worker_main

START_METHOD = "spawn"
STARTUP_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 10.0
FAILURE_GRACE_S = 0.2


@register_wire_type
class WorkerCrashed(InferenceError):
    """A worker process of a sharded or pipelined run died; the run was stopped.

    ``details``: ``worker`` (its label), ``pid``, ``exit_status`` (negative: the signal).
    """


@dataclass(frozen=True)
class WorkerSpec:
    """One worker: the model (or stage) it loads, how, and on which cores."""

    path: str
    label: str
    backend: Optional[str] = None
    options: SessionOptions = field(default_factory=SessionOptions)
    cpus: Tuple[int, ...] = ()


@dataclass
class Route:
    """Where the parent sends slot numbers and where finished ones come back."""

    send: Connection
    recv: Connection
    capacity: int
    workers: Tuple[int, ...]


class WorkerHandle:
    def __init__(self, index: int, spec: WorkerSpec, process: Any, ctrl: Connection) -> None:
        self.index = index
        self.spec = spec
        self.process = process
        self.ctrl = ctrl
        self.info: Dict[str, Any] = {}
        self.stats: Dict[str, Any] = {}

    @property
    def label(self) -> str:
        return self.spec.label


class WorkerGroup:
    """Worker processes wired as shards (``chain=False``) or a pipeline (``chain=True``)."""

    def __init__(self, specs: Sequence[WorkerSpec], chain: bool, flush: int) -> None:
        if not specs:
            raise ValueError("a worker group needs at least one worker")
        self.chain = chain
        self.workers: List[WorkerHandle] = []
        self.routes: List[Route] = []
        self._ctx: Any = multiprocessing.get_context(START_METHOD)
        try:
            self._spawn(specs, flush)
            self._await_ready()
        except BaseException:
            self.close(graceful=False)
            raise

    # -- start ---------------------------------------------------------------

    def _spawn(self, specs: Sequence[WorkerSpec], flush: int) -> None:
        pipe = self._ctx.Pipe
        if self.chain:
            links = [pipe(duplex=False) for _ in range(len(specs) + 1)]  # (reader, writer)
            ends = [(links[k][0], links[k + 1][1]) for k in range(len(specs))]
            self.routes.append(Route(links[0][1], links[-1][0], 0, tuple(range(len(specs)))))
        else:
            ends = []
            for k in range(len(specs)):
                (in_r, in_w), (out_r, out_w) = pipe(duplex=False), pipe(duplex=False)
                ends.append((in_r, out_w))
                self.routes.append(Route(in_w, out_r, 0, (k,)))
        for k, spec in enumerate(specs):
            parent_ctrl, child_ctrl = pipe(duplex=True)
            config = {
                "parent_pid": os.getpid(),
                "path": spec.path,
                "backend": spec.backend,
                "options": asdict(spec.options),
                "cpus": list(spec.cpus),
                "stage": k if self.chain else 0,
                "flush": flush,
            }
            process = self._ctx.Process(
                target=worker_main,
                args=(config, child_ctrl, ends[k][0], ends[k][1]),
                name=f"edgeship-{spec.label.replace(' ', '-')}",
                daemon=True,
            )
            self.workers.append(WorkerHandle(k, spec, process, parent_ctrl))
            with _main_not_needed():
                process.start()
            for end in (child_ctrl, *ends[k]):  # the child has its copies now
                end.close()

    def _await_ready(self) -> None:
        for worker in self.workers:
            worker.info = self.expect(worker, "ready", STARTUP_TIMEOUT_S)

    # -- talk ----------------------------------------------------------------

    def tell(self, worker: WorkerHandle, message: Tuple[Any, ...]) -> None:
        """Send ``message`` on ``worker``'s ``ctrl`` pipe; a worker that is gone raises
        how it died (a killed worker's pipe breaks before its sentinel is seen)."""
        try:
            worker.ctrl.send(message)
        except (EOFError, OSError):
            raise self.failure(worker) from None

    def expect(self, worker: WorkerHandle, kind: str, timeout: float) -> Any:
        """The next ``ctrl`` message of ``worker``, which must be ``kind``."""
        ready = wait([worker.ctrl, worker.process.sentinel], timeout)
        if not ready:
            raise InferenceError(
                f"{worker.label} did not answer within {timeout:g} s", worker=worker.label
            )
        if worker.ctrl not in ready:
            raise self.failure(worker)
        try:
            message = worker.ctrl.recv()
        except (EOFError, OSError):
            raise self.failure(worker) from None
        if message[0] == "error":
            raise error_from_wire(message[1], context=worker.label)
        if message[0] != kind:
            raise InferenceError(f"{worker.label} sent {message[0]!r}, expected {kind!r}")
        return message[1]

    def watch_list(self) -> List[Any]:
        """Objects whose readiness during a run means that something went wrong."""
        return [w.ctrl for w in self.workers] + [w.process.sentinel for w in self.workers]

    def raise_failure(self, ready: Sequence[Any] = ()) -> None:
        """Raise for the worker that caused a failure seen in ``ready`` (or anywhere).

        When one worker dies its neighbours stop too (EOF, broken pipe); after a moment's
        grace for them to settle, the culprit is a worker that reported an error, else
        one that died otherwise than by a neighbour's going, else the first one seen.
        """
        sentinels = [w.process.sentinel for w in self.workers]
        wait(sentinels, FAILURE_GRACE_S)
        for worker in self.workers:
            reported = _reported_error(worker)
            if reported is not None:
                raise reported
        for worker in self.workers:
            worker.process.join(timeout=0)
            if worker.process.exitcode not in (None, 0, NEIGHBOUR_GONE):
                raise self.failure(worker)
        for worker in self.workers:
            if worker.ctrl in ready or worker.process.sentinel in ready:
                raise self.failure(worker)
        raise self.failure(self.workers[0])

    def failure(self, worker: WorkerHandle) -> EdgeshipError:
        """What went wrong with ``worker``: the error it reported, or how it died."""
        reported = _reported_error(worker, wait=0.5)
        if reported is not None:
            return reported
        worker.process.join(timeout=1.0)
        return crashed(worker.label, worker.process.pid, worker.process.exitcode)

    # -- stop ----------------------------------------------------------------

    def finish(self) -> None:
        """Normal end: EOF down every route, then each worker's final statistics."""
        for route in self.routes:
            route.send.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self.workers:
            try:
                worker.stats = self.expect(worker, "stats", max(0.1, deadline - time.monotonic()))
            except EdgeshipError:
                worker.stats = {}

    def close(self, graceful: bool = True) -> None:
        """Stop every worker — after EOF if ``graceful``, else at once — and close every
        pipe. Idempotent."""
        for route in self.routes:
            route.send.close()
        deadline = time.monotonic() + (STOP_TIMEOUT_S if graceful else 0.0)
        for worker in self.workers:
            if worker.process.pid is not None:  # started
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            _kill(worker.process)
        for route in self.routes:
            route.recv.close()
        for worker in self.workers:
            worker.ctrl.close()


@contextlib.contextmanager
def _main_not_needed() -> Iterator[None]:
    """Start a spawned process without re-running the parent's ``__main__`` in it.

    ``spawn`` normally re-imports the parent's main script in the child, which fails for
    ``python -`` or a notebook and re-runs an unguarded script. A worker needs nothing
    from ``__main__``; a spec named ``__main__`` makes ``spawn`` skip it.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = main.__spec__
    main.__spec__ = types.SimpleNamespace(name="__main__")  # type: ignore[assignment]
    try:
        yield
    finally:
        main.__spec__ = saved


def _kill(process: Any) -> None:
    if process.pid is None or process.exitcode is not None:
        return
    process.terminate()
    process.join(timeout=2.0)
    if process.exitcode is None:
        process.kill()
        process.join(timeout=5.0)


def _reported_error(worker: WorkerHandle, wait: float = 0.0) -> Optional[EdgeshipError]:
    """The error ``worker`` sent on its ``ctrl`` pipe, if one arrives within ``wait`` s."""
    try:
        if worker.ctrl.poll(wait):
            message = worker.ctrl.recv()
            if message[0] == "error":
                return error_from_wire(message[1], context=worker.label)
    except (EOFError, OSError):
        pass
    return None


def crashed(label: str, pid: Optional[int], status: Optional[int]) -> WorkerCrashed:
    how = "ended" if status is None else f"exited with status {status}"
    if status is not None and status < 0:
        how = f"was killed by signal {-status}"
    return WorkerCrashed(
        f"{label} (pid {pid}) {how} during the run; the run was stopped and its workers shut down",
        worker=label,
        pid=pid,
        exit_status=status,
    )
