"""Keep converters' and quantizers' chatter off the terminal: progress bars, absl/XNNPACK
logs, warnings.

LiteRT, JAX and TensorFlow write to file descriptors 1 and 2 from C++; only redirecting
the descriptors silences them. What they wrote is replayed on stderr if a block fails
and ``EDGESHIP_DEBUG`` is set.

The descriptors, the warning filters and the loggers' levels belong to the whole process,
while a sweep compresses on several threads at once: overlapping blocks share one change
(:class:`Shared`), made by the first block to enter and undone by the last to leave. Two
blocks that each saved and restored them would leave the process writing into the
other's closed sink.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

__all__ = ["Shared", "quiet"]

T = TypeVar("T")


class Shared(Generic[T]):
    """A change to the process (its descriptors, a logger's level) that overlapping blocks
    on any threads share: ``make`` runs as the first block enters and returns what
    ``undo`` needs as the last one leaves."""

    def __init__(self, make: Callable[[], T], undo: Callable[[T], None]) -> None:
        self._make, self._undo = make, undo
        self._lock = threading.Lock()
        self._depth = 0
        self._made: T | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[T]:
        """The block, inside the change; yields what ``make`` returned."""
        with self._lock:
            if self._depth == 0:
                self._made = self._make()
            self._depth += 1
            made = self._made
        try:
            yield made  # type: ignore[misc]
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    done, self._made = self._made, None
                    self._undo(done)  # type: ignore[arg-type]


@dataclass
class _Redirect:
    saved: tuple[int, int]
    sink: IO[bytes]
    filters: Any
    failed: bool = False


def _redirect() -> _Redirect:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    sink = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _restore, the last block's)
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    filters = warnings.catch_warnings()
    filters.__enter__()
    warnings.simplefilter("ignore")
    return _Redirect(saved, sink, filters)


def _restore(redirect: _Redirect) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    redirect.filters.__exit__(None, None, None)
    for fd, saved in zip((1, 2), redirect.saved, strict=True):
        os.dup2(saved, fd)
        os.close(saved)
    with redirect.sink as sink:
        # a user's error stays one line; EDGESHIP_DEBUG=1 shows what the engine said
        if redirect.failed and os.environ.get("EDGESHIP_DEBUG"):
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace")[-8000:])
            sys.stderr.flush()


_QUIET = Shared(_redirect, _restore)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow fd-level stdout/stderr and Python warnings inside the block."""
    with _QUIET.held() as redirect:
        try:
            yield
        except BaseException:
            redirect.failed = True
            raise
