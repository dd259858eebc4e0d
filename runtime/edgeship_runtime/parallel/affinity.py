"""Which cores each worker gets, pinning a process to them, and dying with the parent.

Pure planning (:func:`plan_cpus`, :func:`suggest_shards`) is separate from the system
calls (:func:`pin`, :func:`die_with_parent`), which degrade to no-ops where the platform
has no such call (macOS has no ``sched_setaffinity`` and no ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import List, Optional, Sequence, Tuple

from ..backends.catalog import accelerator_providers

MAX_AUTO_SHARDS = 8
_PR_SET_PDEATHSIG = 1


def usable_cpus() -> List[int]:
    """The cores this process may run on (its affinity mask), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def suggest_shards(cores: int, threads: int = 0, providers: Sequence[str] = ()) -> int:
    """The default number of data shards: one per ``threads`` cores (one core each when
    ``threads`` is 0), at most :data:`MAX_AUTO_SHARDS`; one when an accelerator provider
    is asked for (the backend catalog says which do), since the accelerator is shared and
    a second session only competes."""
    if set(providers) & set(accelerator_providers()):
        return 1
    per_shard = threads if threads > 0 else 1
    return max(1, min(MAX_AUTO_SHARDS, cores // per_shard))


def plan_cpus(workers: int, cpus: Sequence[int]) -> List[Tuple[int, ...]]:
    """Disjoint core sets for ``workers`` workers out of ``cpus``, as even as possible.

    With more workers than cores, workers share cores round-robin (one core each), so that
    every worker still has a fixed home instead of migrating.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    cores = list(cpus)
    if not cores:
        return [() for _ in range(workers)]
    if workers >= len(cores):
        return [(cores[i % len(cores)],) for i in range(workers)]
    base, extra = divmod(len(cores), workers)
    plan, start = [], 0
    for i in range(workers):
        size = base + (1 if i < extra else 0)
        plan.append(tuple(cores[start : start + size]))
        start += size
    return plan


def pin(cpus: Sequence[int]) -> Optional[List[int]]:
    """Restrict this process (and the threads it starts later) to ``cpus``.

    Returns the affinity now in force, or None where the platform cannot pin.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    return sorted(os.sched_getaffinity(0))


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux).

    Closes the race where the parent died before the request: exits at once if the
    parent is already gone. Returns whether the kernel took the request.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:
        os._exit(1)
    return armed
