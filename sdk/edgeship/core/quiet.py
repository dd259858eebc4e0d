"""Keep converters' and quantizers' chatter off the terminal: progress bars, absl/XNNPACK
logs, warnings.

LiteRT, JAX and TensorFlow write to file descriptors 1 and 2 from C++; only redirecting
the descriptors silences them. What they wrote is replayed on stderr if the block fails
and ``EDGESHIP_DEBUG`` is set.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

__all__ = ["quiet"]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow fd-level stdout/stderr and Python warnings inside the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            # a user's error stays one line; EDGESHIP_DEBUG=1 shows what the engine said
            if failed and os.environ.get("EDGESHIP_DEBUG"):
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace")[-8000:])
                sys.stderr.flush()
