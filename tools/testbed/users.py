"""Local Unix users, one per device.

Each device gets a real account so that file ownership, permissions, ``~``
expansion and process isolation behave as on a real board. Accounts are
tagged with a GECOS marker and live under a dedicated home base, so stale
cleanup only ever deletes accounts and directories this tool created.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import threading
from pathlib import Path

from ._proc import TestbedError, kill_all, pids_of_uid, run

MARKER = "edgeship-testbed"
HOME_BASE = Path("/home/edgeship-testbed")

# useradd/userdel take /etc/passwd locks and give up quickly on contention.
_ACCOUNTS_LOCK = threading.Lock()


def create_user(name: str, authorized_key: str) -> pwd.struct_passwd:
    """Create ``name`` with its own home and ``authorized_key`` installed.

    The password field is ``*`` (no password, but *not* locked): with
    ``UsePAM no`` sshd refuses even key logins to accounts locked with ``!``.
    """
    HOME_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
    HOME_BASE.chmod(0o755)
    home = HOME_BASE / name
    with _ACCOUNTS_LOCK:
        run(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/bin/bash",
                "--comment",
                MARKER,
                "--password",
                "*",
                "--user-group",
                name,
            ]
        )
    entry = pwd.getpwnam(name)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(authorized_key.strip() + "\n")
    keys.chmod(0o600)
    for path in (ssh_dir, keys):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return entry


def testbed_users(pattern: str) -> list[pwd.struct_passwd]:
    """Accounts created by this tool whose name fully matches ``pattern``."""
    regex = re.compile(pattern)
    return [e for e in pwd.getpwall() if e.pw_gecos == MARKER and regex.fullmatch(e.pw_name)]


def delete_user(name: str) -> None:
    """Kill the user's processes, then delete the account and its home."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is not None:
        if entry.pw_gecos != MARKER:
            raise TestbedError(f"refusing to delete {name!r}: not created by the testbed")
        kill_all(pids_of_uid(entry.pw_uid))
        with _ACCOUNTS_LOCK:
            run(["userdel", "--force", "--remove", name], check=False)
            if name in {e.pw_name for e in pwd.getpwall()}:
                run(["userdel", "--force", name])
    home = HOME_BASE / name
    if home.exists():
        shutil.rmtree(home, ignore_errors=True)
