"""Where a sweep's work runs: the one narrow interface, and the choice of implementation.

An :class:`Executor` takes the two kinds of job of :mod:`.work` and returns futures:

- ``compress(job)``: a compression task, run where the job's declared resources are free;
- ``measure(job)``: a cell, run by whoever holds ``job.board``: one cell at a time per
  board, boards in parallel.

Two implementations, with the same report: :class:`~.ray_executor.RayExecutor` (tasks
and one actor per board on a Ray cluster, embedded or joined) and
:class:`~.local_executor.LocalExecutor` (threads in this process).
"""

from __future__ import annotations

import importlib.util
import os
from concurrent.futures import Future
from types import TracebackType
from typing import Protocol, TypeVar

from edgeship.core.config import ConnectOptions
from edgeship.core.errors import UsageError
from edgeship.sweep._report import CellRecord
from edgeship.sweep._work import CompressJob, MeasureJob, VariantOutcome
from edgeship.targets.fleet import DEFAULT_FORKS

__all__ = [
    "LOCAL",
    "OFF",
    "RAY_ADDRESS",
    "E",
    "Executor",
    "open_executor",
    "ray_installed",
    "use_ray",
]

OFF = "off"
LOCAL = "local"
RAY_ADDRESS = "RAY_ADDRESS"
"""The environment variable that names a running Ray cluster (Ray's own)."""


E = TypeVar("E", bound="Executor")


class Executor(Protocol):
    name: str
    """``ray`` or ``threads``: what the report's ``executor`` says."""

    def compress(self, job: CompressJob) -> Future[VariantOutcome]: ...

    def measure(self, job: MeasureJob) -> Future[CellRecord]: ...

    def close(self) -> None:
        """Release boards and workers; futures not yet done are abandoned."""

    # implementations subclass this protocol for these two: a ``with`` closes them
    def __enter__(self: E) -> E:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def use_ray(ray: str | None, boards: int = 0, forks: int = DEFAULT_FORKS) -> bool:
    """Whether the sweep runs on Ray: where it pays for its start (seconds, and a local
    cluster's processes): asked for (``--ray local|auto|ADDRESS``), a cluster named by
    ``RAY_ADDRESS``, or more ``boards`` than the threads measure at once (``forks``), when
    Ray is installed. Otherwise threads start in a blink and do the same work."""
    if ray is not None:
        return ray != OFF
    if not ray_installed():
        return False
    return bool(os.environ.get(RAY_ADDRESS)) or boards > forks


def open_executor(
    ray: str | None,
    connect: ConnectOptions,
    cpus: int | None = None,
    forks: int = DEFAULT_FORKS,
    boards: int = 0,
) -> Executor:
    """The executor ``ray`` names: ``"off"``, threads; ``"local"``, a local Ray (an error
    without Ray); ``"auto"`` or an address, that cluster joined; None, Ray where it pays
    (:func:`use_ray`: the cluster ``RAY_ADDRESS`` names, or a local Ray for more
    ``boards`` than ``forks``), else threads. ``cpus``: CPUs for compression here
    (default: all of this machine's); ``forks``: boards measured at once by threads."""
    if not use_ray(ray, boards, forks):
        from edgeship.sweep._local_executor import LocalExecutor

        return LocalExecutor(connect, cpus=cpus, forks=forks)
    if ray is not None and ray.startswith("ray://"):
        raise UsageError(
            f"--ray {ray}: a Ray Client address; run the sweep on a node of the cluster "
            "with --ray auto instead (the boards are measured from the driver's node)"
        )
    if not ray_installed():
        raise UsageError(
            f"--ray {ray}: Ray is not installed here (pip install 'edgeship[ray]'), "
            "or leave --ray out to run on threads"
        )
    from edgeship.sweep._ray_executor import RayExecutor

    if ray is None and os.environ.get(RAY_ADDRESS):
        ray = "auto"
    return RayExecutor(connect, address=None if ray in (None, LOCAL) else ray, cpus=cpus)
