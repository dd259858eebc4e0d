"""Process groups edgeship started on a device: whether one is frozen, and ending it.

A frozen process — stopped (SIGSTOP, a debugger: state ``T``/``t`` in /proc/PID/stat) —
answers nothing and never sees SIGTERM, which stays pending until it is continued. So
:func:`end_group` sends SIGCONT first, then SIGTERM, and SIGKILL after a short grace.
Every process edgeship starts over an exec channel leads its own group (sshd makes it a
session leader), so a group is the command and everything it started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeship.ssh.connection import Connection

__all__ = ["END_GROUP", "GRACE_S", "STOPPED", "end_group", "stopped"]

GRACE_S = 2.0
"""Seconds a group has between SIGTERM and SIGKILL."""

# Runs with sh: SIGCONT, SIGTERM, then SIGKILL after $2 s, to process group $1.
# Prints "ended" or "gone" (no such group).
END_GROUP = """
group=$1 grace=$2
kill -CONT "-$group" 2>/dev/null || { echo gone; exit 0; }
kill -TERM "-$group" 2>/dev/null
tries=$(awk "BEGIN { print int($grace * 10) }" 2>/dev/null || echo 20)
while [ "$tries" -gt 0 ] && kill -0 "-$group" 2>/dev/null; do
    sleep 0.1; tries=$((tries - 1))
done
kill -KILL "-$group" 2>/dev/null
echo ended
"""

# Runs with sh: the pids of process group $1 that are stopped (state T or t), one a line.
STOPPED = """
for stat in /proc/[0-9]*/stat; do
    line=$(cat "$stat" 2>/dev/null) || continue
    rest=${line##*) }
    set -- $rest
    [ "$3" = "$GROUP" ] && case $1 in T|t) echo "${stat#/proc/}" | cut -d/ -f1 ;; esac
done
"""


def stopped(conn: Connection, group: int, timeout: float) -> list[int]:
    """The stopped processes of ``group`` on the device (none: it runs, or is gone)."""
    argv = ["env", f"GROUP={group}", "sh", "-c", STOPPED]
    result = conn.run(argv, timeout=timeout, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def end_group(conn: Connection, group: int, timeout: float, grace: float = GRACE_S) -> bool:
    """End process group ``group`` on the device, a frozen one too (see the module
    docstring); False when it was already gone."""
    argv = ["sh", "-c", END_GROUP, "sh", str(group), f"{grace:g}"]
    result = conn.run(argv, timeout=timeout + grace, check=False)
    return result.stdout.strip() == b"ended"
