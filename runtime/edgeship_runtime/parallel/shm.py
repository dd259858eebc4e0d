"""Shared-memory tensor transport: one segment of fixed slots, every slot one request.

A slot holds one tensor per *area* (the request's inputs, every intermediate a later
pipeline stage needs, the outputs) at fixed, 64-byte aligned offsets, plus a row of int64
time stamps (when the request was handed over, when each worker started and ended it).
Processes exchange only slot numbers through pipes; the tensors never get pickled.

Lifetime. The parent creates the segment, every worker attaches to it, and then the
parent *unlinks the name at once*: the memory stays mapped in every process and the
kernel frees it when the last one unmaps it or dies. Nothing can be left behind in
``/dev/shm``, whatever kills whom later (a crashed worker, the host's ``killpg`` on a
timeout). Workers attach without registering the segment with multiprocessing's resource
tracker, which would otherwise unlink or warn about a segment the parent owns.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import sys
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UsageError

SHM_PREFIX = "edgeship-"
"""Names of our segments start with this (``/dev/shm/edgeship-...`` on Linux)."""

ALIGN = 64
_names = itertools.count()


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Area:
    """One tensor of a slot: its name, numpy dtype name and shape (per request)."""

    name: str
    dtype: str
    shape: Tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @classmethod
    def of(cls, name: str, array: np.ndarray) -> Area:
        if array.dtype.kind in "OUS":
            raise UsageError(f"tensor {name!r} of dtype {array.dtype}: cannot share it by slots")
        return cls(name, array.dtype.name, tuple(int(d) for d in array.shape))


class SlotLayout:
    """Where each area of each slot lives in the segment; the stamps table comes first."""

    def __init__(self, areas: Sequence[Area], slots: int, stamps: int) -> None:
        if slots < 1 or stamps < 1:
            raise ValueError("a layout needs at least one slot and one stamp")
        names = [a.name for a in areas]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate area names in {names}")
        self.areas = tuple(areas)
        self.slots = slots
        self.stamps = stamps
        self.offsets: Dict[str, int] = {}
        position = _aligned(slots * stamps * 8)
        self.data_start = position
        for area in self.areas:
            self.offsets[area.name] = position - self.data_start
            position += _aligned(area.nbytes)
        self.slot_bytes = max(ALIGN, position - self.data_start)
        self.size = self.data_start + slots * self.slot_bytes

    @staticmethod
    def slot_bytes_for(areas: Sequence[Area]) -> int:
        return max(ALIGN, sum(_aligned(a.nbytes) for a in areas))

    def to_wire(self) -> Dict[str, Any]:
        return {
            "areas": [[a.name, a.dtype, list(a.shape)] for a in self.areas],
            "slots": self.slots,
            "stamps": self.stamps,
        }

    @classmethod
    def from_wire(cls, data: Dict[str, Any]) -> SlotLayout:
        areas = [Area(str(n), str(d), tuple(int(x) for x in s)) for n, d, s in data["areas"]]
        return cls(areas, int(data["slots"]), int(data["stamps"]))


class SharedSlots:
    """The segment of a :class:`SlotLayout`, mapped in this process."""

    def __init__(self, memory: shared_memory.SharedMemory, layout: SlotLayout, owner: bool):
        self._memory: Optional[shared_memory.SharedMemory] = memory
        self.layout = layout
        self.owner = owner
        self.linked = owner
        self.name = memory.name
        buf = memory.buf
        self.stamps: np.ndarray = np.ndarray(
            (layout.slots, layout.stamps), dtype=np.int64, buffer=buf
        )
        self._views: List[Dict[str, np.ndarray]] = [
            self._slot_views(buf, slot) for slot in range(layout.slots)
        ]

    @classmethod
    def create(cls, layout: SlotLayout) -> SharedSlots:
        name = f"{SHM_PREFIX}{os.getpid():x}-{next(_names)}-{secrets.token_hex(3)}"
        memory = shared_memory.SharedMemory(name=name, create=True, size=layout.size)
        return cls(memory, layout, owner=True)

    @classmethod
    def attach(cls, name: str, layout: SlotLayout) -> SharedSlots:
        return cls(_attach_untracked(name), layout, owner=False)

    def _slot_views(self, buf: Any, slot: int) -> Dict[str, np.ndarray]:
        base = self.layout.data_start + slot * self.layout.slot_bytes
        return {
            a.name: np.ndarray(
                a.shape,
                dtype=np.dtype(a.dtype),
                buffer=buf,
                offset=base + self.layout.offsets[a.name],
            )
            for a in self.layout.areas
        }

    def views(self, slot: int) -> Dict[str, np.ndarray]:
        """The tensors of ``slot`` by area name: views into the segment, no copies."""
        return self._views[slot]

    @property
    def all_views(self) -> List[Dict[str, np.ndarray]]:
        """:meth:`views` of every slot, by slot number."""
        return self._views

    def unlink(self) -> None:
        """Remove the name (owner only; idempotent). Mappings stay valid until closed."""
        if self.owner and self.linked and self._memory is not None:
            self.linked = False
            with contextlib.suppress(FileNotFoundError):
                self._memory.unlink()

    def close(self) -> None:
        """Unmap (after unlinking, if still linked and ours)."""
        self.unlink()
        memory, self._memory = self._memory, None
        if memory is None:
            return
        self._views = []
        self.stamps = np.zeros((0, 0), np.int64)
        # BufferError: a caller still holds a view; the mapping goes with the process
        with contextlib.suppress(BufferError):
            memory.close()


def _attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Attach without telling the resource tracker: the creating process owns the name."""
    if sys.version_info >= (3, 13):
        factory: Any = shared_memory.SharedMemory
        return factory(name=name, track=False)
    from multiprocessing import resource_tracker

    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register
