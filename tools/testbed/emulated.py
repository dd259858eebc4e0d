"""One emulated board: a testbed device whose programs are another architecture's.

Like every device it has a network namespace, a Unix account and its own sshd; unlike
them, that sshd and everything its sessions start are the board's own binaries (Debian
for aarch64, say), run under qemu-user through binfmt_misc, chrooted into a root of
their own. On this machine, per device NAME, under :data:`ROOTS_BASE`/NAME:

- ``upper/``, ``work/``: the writable layer of an overlay over the cached root of
  :mod:`.rootfs` (which stays read-only and shared);
- ``root/``: that overlay, with the kernel's ``/proc``, this machine's ``/dev`` (a
  recursive bind, made a slave so nothing propagates back), the account's home and the
  device directory (sshd config, host key, pid file) bound at the same paths as outside,
  so :attr:`.Device.home` and the testbed's files mean the same inside and out.

``/sys`` is not mounted: it would describe this machine, not the board, and
onnxruntime's cpuinfo crashes under qemu-user reading the host's x86 topology there.

The account is the host account :func:`.users.create_user` made (same uid, gid and
home), copied into the root's passwd, group and shadow. The board reaches PyPI, and
nothing else, through the host-side proxy of :mod:`.proxy`, named in ``/etc/pip.conf``
with this machine's CA store (so a TLS-intercepting network works as it does here).
Teardown is in :mod:`.cleanup`, which finds these by name like everything else.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from . import proxy
from ._proc import TestbedError, run

ROOTS_BASE = Path("/var/tmp/edgeship-testbed/roots")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SSHD = "/usr/sbin/sshd"  # inside the root


def root_dir(name: str) -> Path:
    """The device's root as seen from this machine."""
    return ROOTS_BASE / name / "root"


def assemble(
    name: str, rootfs: Path, account: pwd.struct_passwd, ddir: Path, proxy_url: str
) -> Path:
    """Mount device ``name``'s root over ``rootfs`` and make it ready for its sshd."""
    base = ROOTS_BASE / name
    if base.exists():
        raise TestbedError(f"{base} exists: a device of this name was not torn down")
    upper, work, root = base / "upper", base / "work", base / "root"
    for path in (upper, work, root):
        path.mkdir(parents=True)
    overlay = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
    run(["mount", "-t", "overlay", "-o", overlay, f"edgeship-testbed-{name}", str(root)])
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    run(["mount", "--rbind", "/dev", str(root / "dev")])
    run(["mount", "--make-rslave", str(root / "dev")])
    for outside in (Path(account.pw_dir), ddir):
        inside = root / outside.relative_to("/")
        inside.mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", str(outside), str(inside)])
    (root / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    _add_account(root, account)
    _configure_pip(root, proxy_url)
    return root


def _add_account(root: Path, account: pwd.struct_passwd) -> None:
    """The host account, as the board's own: same uid, gid, home and shell."""
    a = account
    lines = {
        "passwd": f"{a.pw_name}:x:{a.pw_uid}:{a.pw_gid}:{a.pw_gecos}:{a.pw_dir}:/bin/bash",
        "group": f"{a.pw_name}:x:{a.pw_gid}:",
        # "*": no password, but not locked (sshd refuses key logins to locked accounts)
        "shadow": f"{a.pw_name}:*:19000:0:99999:7:::",
    }
    for file, line in lines.items():
        with (root / "etc" / file).open("a") as f:
            f.write(line + "\n")


def _configure_pip(root: Path, proxy_url: str) -> None:
    certs = root / "etc" / "ssl" / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    if HOST_CA_BUNDLE.exists():
        shutil.copyfile(HOST_CA_BUNDLE, certs / "ca-certificates.crt")
    (root / "etc" / "pip.conf").write_text(
        f"[global]\nproxy = {proxy_url}\ncert = /etc/ssl/certs/ca-certificates.crt\n"
    )


def start_proxy(name: str, address: str, log: Path) -> subprocess.Popen[bytes]:
    """The device's way to PyPI (see :mod:`.proxy`), listening on the host's address."""
    argv = [sys.executable, proxy.__file__, "--listen", f"{address}:{proxy.PORT}", "--name", name]
    with log.open("ab") as log_file:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )


def in_root(
    root: str | Path, argv: Sequence[str], user: pwd.struct_passwd | None = None
) -> list[str]:
    """argv running ``argv`` inside ``root`` (as ``user``, from its home, if given)."""
    if user is None:
        return ["chroot", str(root), *argv]
    return [
        "chroot",
        f"--userspec={user.pw_uid}:{user.pw_gid}",
        str(root),
        "/bin/sh",
        "-c",
        'cd "$HOME" && exec "$@"',
        "sh",
        *argv,
    ]
