"""Real OpenSSH servers in network namespaces, for edgeship end-to-end tests.

``Testbed(n, workdir)`` brings up ``n`` simulated boards on this machine (root
needed): each is a network namespace on a private /30, a real sshd, its own
Unix user and home, and a shared world-readable device Python. With
``arch="aarch64"`` each is instead an emulated board of that architecture, with its
own Debian, Python and sshd under qemu-user (:mod:`.emulated`, :mod:`.rootfs`). See
``python -m tools.testbed --help`` for the CLI.
"""

from __future__ import annotations

from . import rootfs
from ._proc import TestbedError
from .device import Device
from .preflight import missing_requirements
from .pyenv import DEVICE_PYTHON, ensure_device_python
from .testbed import Testbed

__all__ = [
    "DEVICE_PYTHON",
    "Device",
    "Testbed",
    "TestbedError",
    "ensure_device_python",
    "missing_requirements",
    "rootfs",
]
