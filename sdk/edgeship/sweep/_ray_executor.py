"""The executor on Ray: compression as tasks, each board held by one actor.

- A compression is a Ray task declaring its resources (:func:`~.plan.resources_for`:
  one CPU, or for a variant that trains two CPUs and a GPU when the cluster has one), so
  Ray places it wherever those are free. Its inputs (the base model, the data) travel
  through the object store once per sweep and the made model comes back as bytes: a
  worker needs no shared file system.
- Each board is leased by one actor (``num_cpus=0``: it waits on the board, it does not
  compute) whose methods run one at a time: one measurement at a time per board, as
  TVM's RPC tracker leases a device to one tuner. The actors are placed on the node of
  this driver, the machine whose ssh config, keys and targets file reach the boards.

Ray stays on the host side: boards run only the edgeship runtime. Without ``address`` a
local Ray is started here (this machine's CPUs, or ``cpus``) and shut down at the end;
``"auto"`` or an address joins a running cluster, whose workers must have edgeship
installed. Imported only when Ray is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import EdgeshipError
from edgeship.core.hashing import file_sha256
from edgeship.sweep._executor import Executor
from edgeship.sweep._local_executor import failed_cell
from edgeship.sweep._plan import Resources
from edgeship.sweep._report import CellRecord
from edgeship.sweep._work import (
    CompressJob,
    MeasureJob,
    VariantOutcome,
    compress_variant,
    measure_cell,
)
from edgeship.targets import Target, open_target

__all__ = ["CACHE", "CLOSE_WAIT_S", "Blob", "RayExecutor"]

CACHE = Path(tempfile.gettempdir()) / "edgeship-sweep-cache"
CLOSE_WAIT_S = 5.0


@dataclass(frozen=True)
class Blob:
    """A file's bytes, to be written out again on the worker that needs it."""

    name: str
    sha256: str
    data: bytes

    @classmethod
    def of(cls, path: Path) -> Blob:
        return cls(path.name, file_sha256(path), path.read_bytes())

    def materialize(self) -> Path:
        """The file on this machine (one copy per content, kept between tasks)."""
        path = CACHE / self.sha256[:32] / self.name
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{self.name}.{os.getpid()}.tmp")
            tmp.write_bytes(self.data)
            os.replace(tmp, path)
        return path


@ray.remote
def _compress_task(job: CompressJob, base: Blob, data: Blob | None) -> VariantOutcome:
    with tempfile.TemporaryDirectory(prefix="edgeship-sweep-") as tmp:
        here = replace(
            job,
            base=base.materialize(),
            data=None if data is None else data.materialize(),
            out=Path(tmp) / job.out.name,
        )
        outcome = compress_variant(here)
        if outcome.record.ok:
            outcome.model_bytes = here.out.read_bytes()
        return outcome


class _Board:
    """Holds one board; as a Ray actor (:data:`_BOARD`) its calls run one at a time."""

    def __init__(self, board: str, connect: ConnectOptions) -> None:
        self.board, self.connect = board, connect
        self.target: Target | None = None

    def measure(self, job: MeasureJob) -> CellRecord:
        try:
            if self.target is None:
                self.target = open_target(self.board, self.connect)
        except EdgeshipError as exc:
            return failed_cell(job, exc)
        return measure_cell(self.target, job)

    def close(self) -> None:
        if self.target is not None:
            self.target.close()


_BOARD: Any = ray.remote(num_cpus=0)(_Board)


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self, connect: ConnectOptions, address: str | None = None, cpus: int | None = None
    ) -> None:
        self.connect = connect
        self.owns = not ray.is_initialized()
        if self.owns:
            quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if address is None:
                ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False, **quiet)
            else:
                ray.init(address=address, **quiet)
        resources = ray.cluster_resources()
        self.cluster = (float(resources.get("CPU", 1.0)), float(resources.get("GPU", 0.0)))
        self.here = NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False
        )
        self.blobs: dict[Path, Any] = {}
        self.boards: dict[str, Any] = {}

    def declared(self, resources: Resources) -> Resources:
        return resources.fit(*self.cluster)

    def compress(self, job: CompressJob) -> Future[VariantOutcome]:
        need = self.declared(job.resources)
        task = _compress_task.options(num_cpus=need.cpus, num_gpus=need.gpus)
        data = None if job.data is None else self._blob(job.data)
        ref = task.remote(replace(job, resources=need), self._blob(job.base), data)
        return ref.future()

    def _blob(self, path: Path) -> Any:
        """The object-store reference of ``path``'s bytes (put once per sweep)."""
        if path not in self.blobs:
            self.blobs[path] = ray.put(Blob.of(path))
        return self.blobs[path]

    def measure(self, job: MeasureJob) -> Future[CellRecord]:
        board = self.boards.get(job.board)
        if board is None:
            board = _BOARD.options(scheduling_strategy=self.here).remote(job.board, self.connect)
            self.boards[job.board] = board
        done: Future[CellRecord] = Future()
        reply: Future[CellRecord] = board.measure.remote(job).future()
        reply.add_done_callback(lambda f: self._settle(f, done, job))
        return done

    def _settle(self, reply: Future[CellRecord], done: Future[CellRecord], job: MeasureJob) -> None:
        """The cell, or a failed cell when the board's actor died under it (the next
        cell on that board gets a new actor)."""
        try:
            done.set_result(reply.result())
        except ray.exceptions.RayActorError as exc:
            self.boards.pop(job.board, None)
            done.set_result(failed_cell(job, exc))
        except BaseException as exc:
            done.set_exception(exc)

    def close(self) -> None:
        """Close every board's session (a few seconds at most: a board busy with a cell,
        as when the sweep is interrupted, is not waited for), end the actors, and stop the
        local Ray if this executor started it."""
        boards = list(self.boards.values())
        with contextlib.suppress(Exception):
            closing = [board.close.remote() for board in boards]
            ray.wait(closing, num_returns=len(closing), timeout=CLOSE_WAIT_S)
        for board in boards:
            with contextlib.suppress(Exception):
                ray.kill(board)
        self.boards.clear()
        self.blobs.clear()
        if self.owns:
            ray.shutdown()
