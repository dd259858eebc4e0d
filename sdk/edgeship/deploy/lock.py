"""The deploy root's lock: an flock held by a process on the device for as long as we live.

The holder is a python3 process started over its own exec channel: it takes the flock,
says so with the device's clock, and keeps it until its stdin closes — when we release
it, or when this host crashes or the connection drops (the kernel then releases the
flock). No stale lock file can outlive its owner.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

from ..errors import DeployError
from ..ssh.connection import Connection

# Runs on the device with its python3: take an exclusive flock (waiting up to argv[2]
# seconds), say "locked" and the device's clock, then hold it until stdin closes.
LOCK_SCRIPT = """
import fcntl, sys, time
f = open(sys.argv[1], "a")
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except OSError:
        if time.monotonic() > deadline:
            print("busy", flush=True)
            sys.exit(3)
        time.sleep(0.1)
print("locked", time.time(), flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def device_lock(conn: Connection, path: str, wait: float, what: str) -> Iterator[float]:
    """Hold the flock on ``path`` for the block, waiting up to ``wait`` s for another
    holder; yields the device's clock at the moment it was taken. ``what`` names the
    locked thing in errors."""
    holder = conn.start(["python3", "-c", LOCK_SCRIPT, path, f"{wait:g}"])
    try:
        answer = holder.readline(timeout=wait + conn.timeouts.connect)
    except queue.Empty:
        answer = b""
    said = answer.split()
    if said[:1] != [b"locked"]:
        holder.kill()
        reason = (
            "another deploy holds it"
            if answer.strip() == b"busy"
            else (holder.stderr_tail().strip() or "the lock helper did not answer")
        )
        raise DeployError(
            f"{conn.label}: cannot lock {what}: {reason}; retry later", target=conn.label
        )
    try:
        yield float(said[1])
    finally:
        holder.close()  # EOF on its stdin: the helper exits and the flock is released
        holder.exit_status(timeout=5.0)
        holder.channel.close()
