"""Whether an SSH agent is there to log in with: asked for its keys over ``$SSH_AUTH_SOCK``
before paramiko is allowed to use it."""

from __future__ import annotations

import os
import socket
import struct
import sys

__all__ = ["agent_has_keys"]

_AGENT_LIST_KEYS = struct.pack(">IB", 1, 11)  # SSH2_AGENTC_REQUEST_IDENTITIES
_AGENT_KEY_LIST = 12  # SSH2_AGENT_IDENTITIES_ANSWER


def agent_has_keys(timeout: float) -> bool:
    """Whether ``$SSH_AUTH_SOCK`` leads to an SSH agent holding a key, asked within ``timeout``
    seconds.

    paramiko aborts the whole login when the agent hangs up, waits forever for one that
    does not answer, and leaks the socket of one that is gone; like OpenSSH, we log in
    without such an agent instead.
    """
    if sys.platform == "win32":
        return True  # Pageant or the OpenSSH pipe, which paramiko finds itself
    path = os.environ.get("SSH_AUTH_SOCK")
    if not path:
        return False
    answer = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(_AGENT_LIST_KEYS)
            while len(answer) < 9 and (chunk := sock.recv(9 - len(answer))):
                answer += chunk
    except OSError:
        return False
    if len(answer) < 9:
        return False
    _, kind, keys = struct.unpack(">IBI", answer)  # length, message type, number of keys
    return kind == _AGENT_KEY_LIST and keys > 0
