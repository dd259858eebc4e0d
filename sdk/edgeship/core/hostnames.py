"""Host and user names checked as OpenSSH checks those given on its command line.

ssh_config may run a shell with the host name in it (``Match exec "... %h"``, and
paramiko's lookup does), so a name carrying shell syntax would run that syntax on this
machine. Like ``ssh`` (``valid_hostname``/``valid_ruser`` in its misc.c), edgeship refuses
such names before any ssh_config lookup. No paramiko here: the targets file is checked
without loading it.
"""

from __future__ import annotations

__all__ = ["host_name_problem", "target_problem", "user_name_problem"]

_HOST_REFUSED = frozenset("'`\"$\\;&<>|(){},")
"""What a shell gives a meaning to, and ``,`` (a list separator in ssh_config and targets)."""
_USER_REFUSED = _HOST_REFUSED - frozenset("$\\,")
"""As OpenSSH: ``$`` and ``\\`` are in some real user names (a trailing ``\\`` is not)."""


def host_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a host name (OpenSSH's ``valid_hostname``), or None."""
    if name.startswith("-"):
        return "starts with '-'"
    bad = _first_bad(name, _HOST_REFUSED)
    return None if bad is None else f"contains invalid characters ({bad})"


def user_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a remote user name (OpenSSH's ``valid_ruser``; whitespace
    too, which a target spec cannot carry anyway), or None."""
    if name.startswith("-"):
        return "starts with '-'"
    bad = _first_bad(name, _USER_REFUSED)
    if bad is None and name.endswith("\\"):
        bad = "a trailing backslash"
    return None if bad is None else f"contains invalid characters ({bad})"


def target_problem(spec: str) -> str | None:
    """Why the target ``spec`` (an alias or ``user@host[:port]``) cannot name an SSH host,
    or None: a problem of its host part (after the last ``@``) or of its user part."""
    user, at, host = spec.rpartition("@")
    problem = host_name_problem(host)
    if problem is not None:
        return f"host name {problem}"
    problem = user_name_problem(user) if at else None
    return None if problem is None else f"user name {problem}"


def _first_bad(name: str, refused: frozenset[str]) -> str | None:
    """The first character of ``name`` in ``refused``, a space or a control character."""
    for char in name:
        if char in refused:
            return repr(char)
        if char.isspace():
            return "whitespace"
        if not char.isprintable():
            return "a control character"
    return None
