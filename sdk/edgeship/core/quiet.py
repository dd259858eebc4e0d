"""Keep converters' and quantizers' chatter off the terminal: progress bars, absl/XNNPACK
logs, warnings.

LiteRT, JAX and TensorFlow write to file descriptors 1 and 2 from C++; only redirecting
the descriptors silences them. What they wrote is replayed on stderr if a block fails
and ``EDGESHIP_DEBUG`` is set.

The descriptors and the warning filters belong to the whole process, while a sweep
compresses on several threads at once: every thread's block shares one redirection, made
by the first block to enter and undone by the last to leave. Two blocks that each saved
and restored them would leave the process writing into the other's closed sink.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["quiet"]


class _Shared:
    """The redirection the open blocks share."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = (-1, -1)
        self.sink: IO[bytes] | None = None
        self.filters: Any = None
        self.failed = False


_SHARED = _Shared()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow fd-level stdout/stderr and Python warnings inside the block."""
    _enter()
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _leave(failed)


def _enter() -> None:
    with _SHARED.lock:
        _SHARED.depth += 1
        if _SHARED.depth > 1:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        _SHARED.saved = (os.dup(1), os.dup(2))
        _SHARED.sink = tempfile.TemporaryFile()  # noqa: SIM115 (the last block out closes it)
        os.dup2(_SHARED.sink.fileno(), 1)
        os.dup2(_SHARED.sink.fileno(), 2)
        _SHARED.filters = warnings.catch_warnings()
        _SHARED.filters.__enter__()
        warnings.simplefilter("ignore")
        _SHARED.failed = False


def _leave(failed: bool) -> None:
    with _SHARED.lock:
        _SHARED.failed |= failed
        _SHARED.depth -= 1
        if _SHARED.depth > 0:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        _SHARED.filters.__exit__(None, None, None)
        os.dup2(_SHARED.saved[0], 1)
        os.dup2(_SHARED.saved[1], 2)
        os.close(_SHARED.saved[0])
        os.close(_SHARED.saved[1])
        sink, _SHARED.sink = _SHARED.sink, None
        assert sink is not None
        with sink:
            # a user's error stays one line; EDGESHIP_DEBUG=1 shows what the engine said
            if _SHARED.failed and os.environ.get("EDGESHIP_DEBUG"):
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace")[-8000:])
                sys.stderr.flush()
