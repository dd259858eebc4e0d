"""Testbed: n simulated boards, each a real sshd in its own network namespace.

``up()`` builds everything and writes the client-side files (ssh_config,
known_hosts, key, edgeship.toml) into a work directory; ``down()`` removes
every trace. The state is also recorded in ``testbed.json`` so that another
process (the CLI's ``down``) can attach to a running testbed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from . import cleanup, cpucap, device, emulated, files, netns, preflight, pyenv, rootfs, sshd, users
from ._proc import DEFAULT_TIMEOUT, TestbedError, kill_all
from .device import Device

PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,7}")  # "{prefix}-h99" must fit in 15 chars
MAX_DEVICES = 100
PORT = 22
DEPLOY_ROOT = "~/.edgeship"
STATE_FILE = "testbed.json"


class Testbed:
    """A set of SSH-reachable devices for end-to-end tests.

    Use as a context manager (``with Testbed(4, tmp) as tb:``) or call
    :meth:`up` / :meth:`down`; teardown happens even when the body fails.
    ``cpus`` pins devices to cpu sets; ``cpu_cap`` gives each device a quota of that
    many cores (see :mod:`tools.testbed.cpucap`), so that N devices behave like N boards.
    ``arch`` ("aarch64", "armv7l") makes every device an emulated board of that
    architecture (see :mod:`tools.testbed.emulated`): its own Debian, Python and sshd
    under qemu-user, nothing set up on it yet, PyPI reachable through a host-side proxy.
    """

    __test__ = False  # the name starts with "Test": keep pytest from collecting it

    def __init__(
        self,
        n: int,
        workdir: Path,
        prefix: str = "es",
        cpus: list[list[int]] | None = None,
        *,
        device_python: bool = True,
        cpu_cap: float | None = None,
        arch: str | None = None,
    ) -> None:
        if not 1 <= n <= MAX_DEVICES:
            raise TestbedError(f"n must be in 1..{MAX_DEVICES}, got {n}")
        if not PREFIX_RE.fullmatch(prefix):
            raise TestbedError(f"prefix must match {PREFIX_RE.pattern}, got {prefix!r}")
        if cpus is not None and (not cpus or not all(cpus)):
            raise TestbedError(f"cpus must be a non-empty list of non-empty lists, got {cpus}")
        self.n = n
        self.workdir = Path(workdir).resolve()
        if any(ch.isspace() for ch in str(self.workdir)):
            # sshd_config/ssh_config paths are written unquoted.
            raise TestbedError(f"workdir must not contain whitespace: {self.workdir}")
        self.prefix = prefix
        if cpu_cap is not None and not cpu_cap > 0:
            raise TestbedError(f"cpu_cap must be a positive number of cores, got {cpu_cap}")
        self.cpus = [list(group) for group in cpus] if cpus else None
        self.cpu_cap = cpu_cap
        if arch is not None:
            rootfs.emulation(arch)  # a known arch, before anything is created
        self.arch = arch
        self.device_python = device_python and arch is None  # a board has its own Python
        self.devices: list[Device] = []
        self._rootfs: Path | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    # -- paths -------------------------------------------------------------

    @property
    def ssh_config(self) -> Path:
        """ssh_config with one ``Host`` alias per device (``ssh -F``)."""
        return self.workdir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        """known_hosts holding every device's host key."""
        return self.workdir / "known_hosts"

    @property
    def identity(self) -> Path:
        """Private client key accepted by every device."""
        return self.workdir / "id_ed25519"

    @property
    def targets(self) -> Path:
        """edgeship targets file listing the devices and a ``testbed`` group."""
        return self.workdir / "edgeship.toml"

    def device_dir(self, dev: Device | str) -> Path:
        """Per-device directory (sshd_config, host key, pid file, sshd.log)."""
        return self.workdir / (dev.name if isinstance(dev, Device) else dev)

    def __getitem__(self, key: int | str) -> Device:
        """Device by index or by alias."""
        if isinstance(key, int):
            return self.devices[key]
        for dev in self.devices:
            if dev.name == key:
                return dev
        raise KeyError(key)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Testbed:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Testbed:
        """Bring up all devices; on any failure, remove what was created."""
        preflight.ensure_ready(need_python=self.device_python)
        if self.arch is not None:
            self._rootfs = rootfs.ensure_rootfs(self.arch)  # minutes the first time
        cleanup.purge(self.prefix)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._up()
        except BaseException:
            self._teardown(quiet=True)
            raise
        return self

    def _up(self) -> None:
        """The steps of :meth:`up`; independent work runs concurrently."""
        with ThreadPoolExecutor(max_workers=self.n + 1) as pool:
            python: Future[Path] | None = None
            if self.device_python:
                python = pool.submit(pyenv.ensure_device_python)
            client_pub = sshd.generate_key(self.identity, f"edgeship-testbed-{self.prefix}")
            version = sshd.sshd_version(self._rootfs)
            with netns.machine_lock():
                subnets = netns.allocate_subnets(self.n)
                plumbing = [self._link(i, net) for i, net in enumerate(subnets)]
            jobs = [
                pool.submit(self._provision, i, link, client_pub, version)
                for i, link in enumerate(plumbing)
            ]
            started = [job.result() for job in jobs]
            for dev, proc, _ in started:
                sshd.wait_banner(proc, dev.address, dev.port, self.device_dir(dev) / "sshd.log")
            if python is not None:
                python.result()
        self.devices = [dev for dev, _, _ in started]
        self._write_files([(dev, pub) for dev, _, pub in started])

    def _link(self, i: int, subnet: ipaddress.IPv4Network) -> netns.Link:
        """Namespace and veth pair of device ``i``."""
        return netns.create_link(
            f"{self.prefix}-dev{i}", f"{self.prefix}-h{i}", f"{self.prefix}-d{i}", subnet
        )

    def _device_cpus(self, i: int) -> tuple[int, ...]:
        """CPU set of device ``i``: the cpus groups, assigned round-robin."""
        return tuple(self.cpus[i % len(self.cpus)]) if self.cpus else ()

    def _provision(
        self, i: int, link: netns.Link, client_pub: str, version: tuple[int, int]
    ) -> tuple[Device, subprocess.Popen[bytes], str]:
        """Create device ``i``'s user, host key and config, and start its sshd."""
        name = link.namespace
        account = users.create_user(name, client_pub)
        ddir = self.device_dir(name)
        ddir.mkdir(exist_ok=True)
        host_pub = sshd.generate_key(ddir / "ssh_host_ed25519_key", f"{name}-host")
        config = ddir / "sshd_config"
        config.write_text(
            sshd.render_config(
                address=link.device_address,
                port=PORT,
                user=name,
                host_key=ddir / "ssh_host_ed25519_key",
                pidfile=ddir / "sshd.pid",
                version=version,
            )
        )
        dev = Device(
            name=name,
            address=link.device_address,
            port=PORT,
            user=name,
            home=Path(account.pw_dir),
            deploy_root=DEPLOY_ROOT,
            namespace=name,
            host_key_fingerprint=sshd.fingerprint(host_pub),
            cpus=self._device_cpus(i),
            cpu_cap=self.cpu_cap,
            host_address=link.host_address,
            host_veth=link.host_veth,
            arch=self.arch,
            root=str(emulated.root_dir(name)) if self.arch else None,
        )
        root = None
        if self._rootfs is not None:
            proxy = f"http://{link.host_address}:{emulated.proxy.PORT}"
            root = emulated.assemble(name, self._rootfs, account, ddir, proxy)
            self._procs.append(emulated.start_proxy(name, link.host_address, ddir / "proxy.log"))
        proc = sshd.start(
            namespace=name, config=config, log=ddir / "sshd.log", cpus=dev.cpus, root=root
        )
        self._procs.append(proc)
        if self.cpu_cap is not None:  # before any connection: every session inherits it
            cpucap.join(cpucap.create(name, self.cpu_cap), proc.pid)
        return dev, proc, host_pub

    def _write_files(self, keys: Sequence[tuple[Device, str]]) -> None:
        """ssh_config, known_hosts, edgeship.toml and the state file."""
        self.ssh_config.write_text(files.ssh_config(self.devices, self.identity, self.known_hosts))
        self.known_hosts.write_text(files.known_hosts(keys))
        python = None if self.arch else str(pyenv.DEVICE_PYTHON)  # a board: none set up yet
        self.targets.write_text(files.targets_toml(self.devices, python))
        state = {
            "prefix": self.prefix,
            "arch": self.arch,
            "n": self.n,
            "cpus": self.cpus,
            "cpu_cap": self.cpu_cap,
            "device_python": self.device_python,
            "devices": [dev.to_dict() for dev in self.devices],
        }
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def down(self) -> None:
        """Remove every trace of this testbed; safe to call repeatedly."""
        self._teardown(quiet=False)

    def _teardown(self, *, quiet: bool) -> None:
        """Stop the sshds we started, then purge everything with our prefix."""
        kill_all(proc.pid for proc in self._procs)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        self.devices = []
        (self.workdir / STATE_FILE).unlink(missing_ok=True)
        try:
            cleanup.purge(self.prefix)
        except TestbedError:
            if not quiet:
                raise

    @classmethod
    def attach(cls, workdir: Path) -> Testbed:
        """Rebuild a Testbed object from the state ``up()`` left in ``workdir``."""
        state_path = Path(workdir) / STATE_FILE
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError) as exc:
            raise TestbedError(f"no testbed state in {state_path}: {exc}") from exc
        bed = cls(
            state["n"],
            Path(workdir),
            state["prefix"],
            state["cpus"],
            device_python=state["device_python"],
            cpu_cap=state.get("cpu_cap"),
            arch=state.get("arch"),
        )
        bed.devices = [Device.from_dict(raw) for raw in state["devices"]]
        return bed

    # -- per-device operations (fault injection and inspection) ------------

    def run_as(
        self,
        dev: Device,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        input: str | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as the device's user inside its namespace."""
        return device.run_as(dev, argv, timeout=timeout, input=input, check=check)

    def kill_sessions(self, dev: Device) -> int:
        """Drop all live SSH connections of ``dev``; its sshd keeps listening."""
        return device.kill_sessions(self.device_dir(dev) / "sshd.pid")

    def blackhole(self, dev: Device, on: bool = True) -> None:
        """Make packets to ``dev`` vanish (``on=False`` restores it)."""
        device.blackhole(dev, on)

    def small_disk(self, dev: Device, size_kb: int) -> None:
        """Give ``dev`` a deploy root of only ``size_kb`` KiB (tmpfs)."""
        device.small_disk(dev, size_kb)

    def restore_disk(self, dev: Device) -> None:
        """Undo :meth:`small_disk`."""
        device.restore_disk(dev)

    def reset_faults(self) -> None:
        """Undo every fault on every device (for use between tests)."""
        for dev in self.devices:
            device.blackhole(dev, False)
            device.restore_disk(dev)

    def ssh_argv(self, dev: Device, *command: str, connect_timeout: float = 10) -> list[str]:
        """argv for the OpenSSH client to run ``command`` on ``dev``."""
        return [
            "ssh",
            "-F",
            str(self.ssh_config),
            "-o",
            f"ConnectTimeout={connect_timeout:g}",
            dev.name,
            *command,
        ]

    def wait_gone(self, timeout: float = 10.0) -> list[str]:
        """Poll until nothing of this prefix is left; return what remains."""
        deadline = time.monotonic() + timeout
        remaining = cleanup.leftovers(self.prefix)
        while remaining and time.monotonic() < deadline:
            time.sleep(0.05)
            remaining = cleanup.leftovers(self.prefix)
        return remaining
