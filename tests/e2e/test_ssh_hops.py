"""ssh_config's ProxyJump chains and the SSH agent, through real sshd (see conftest.py).

The testbed's devices can reach only this host. For a chain ``dev0 -> dev1 -> dev2`` the
``chain`` fixture routes each device to the next one through this host (forwarding on the
testbed's own veths only) and cuts dev1 and dev2 off from this host, so the target is
reachable through the hops and no other way; each device's sshd.log then shows which
address every session came from.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions, ProfileConfig, Timeouts
from edgeship.core.errors import AuthenticationError, ConnectError, HostKeyError
from edgeship.ssh.connection import Connection
from edgeship.targets import SSHTarget, open_target
from tests.e2e.conftest import cli
from tools.testbed import DEVICE_PYTHON, Device, Testbed

# -- the chain dev0 -> dev1 -> dev2 -------------------------------------------------


def _ip(device: Device, *args: str) -> None:
    subprocess.run(["ip", "-n", device.namespace, *args], check=True, timeout=30)


def _forwarding(device: Device) -> Path:
    return Path(f"/proc/sys/net/ipv4/conf/{device.host_veth}/forwarding")


@pytest.fixture
def chain(clean_testbed: Testbed) -> Iterator[tuple[Device, Device, Device]]:
    """dev0, dev1, dev2: each routed to its neighbours, dev1 and dev2 unreachable from here."""
    first, middle, last = clean_testbed.devices[:3]
    routes = [(first, middle), (middle, first), (middle, last), (last, middle)]
    saved = {dev.name: _forwarding(dev).read_text() for dev in (first, middle, last)}
    try:
        for dev in (first, middle, last):
            _forwarding(dev).write_text("1")
        for dev, peer in routes:
            _ip(dev, "route", "replace", f"{peer.address}/32", "via", dev.host_address)
        clean_testbed.blackhole(middle)  # undone by clean_testbed
        clean_testbed.blackhole(last)
        yield first, middle, last
    finally:
        for dev, peer in routes:
            subprocess.run(
                ["ip", "-n", dev.namespace, "route", "del", f"{peer.address}/32"],
                capture_output=True,
                timeout=30,
            )
        for dev in (first, middle, last):
            _forwarding(dev).write_text(saved[dev.name])


def _host_entry(testbed: Testbed, alias: str, dev: Device, *extra: str) -> str:
    lines = [
        f"Host {alias}",
        f"HostName {dev.address}",
        f"User {dev.user}",
        f"IdentityFile {testbed.identity}",
        f"UserKnownHostsFile {testbed.known_hosts}",
        *extra,
    ]
    return "\n".join(lines[:1] + ["    " + line for line in lines[1:]]) + "\n"


def _ssh_config(testbed: Testbed, tmp_path: Path, *entries: str) -> Path:
    """The testbed's ssh_config (one alias per device) plus ``entries``."""
    path = tmp_path / "ssh_config"
    path.write_text(testbed.ssh_config.read_text() + "\n" + "\n".join(entries))
    return path


def _options(ssh_config: Path, timeouts: Timeouts) -> ConnectOptions:
    return ConnectOptions(ssh_config=ssh_config, timeouts=timeouts, python=str(DEVICE_PYTHON))


class SshdLog:
    """The part of one device's sshd.log written after it was created."""

    def __init__(self, testbed: Testbed, dev: Device) -> None:
        self.path = testbed.device_dir(dev) / "sshd.log"
        self.start = self.path.stat().st_size

    def text(self) -> str:
        return self.path.read_bytes()[self.start :].decode(errors="replace")

    def sessions(self, user: str) -> list[tuple[str, int]]:
        """(client address, pid of the session's sshd) for each login of ``user``."""
        found = re.findall(
            rf"Accepted publickey for {re.escape(user)} from (\S+) port \d+ .*\n"
            r"User child is on pid (\d+)",
            self.text(),
        )
        return [(address, int(pid)) for address, pid in found]


def _wait_ended(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Poll until no process in ``pids`` is left; return those still alive."""
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()]
    return alive


@pytest.mark.parametrize("written_as", ["ProxyJump a,b", "b's own ProxyJump a"])
def test_two_hop_proxyjump_goes_through_each_hop_and_close_ends_them_all(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    chain: tuple[Device, Device, Device],
    zoo: Path,
    tmp_path: Path,
    written_as: str,
) -> None:
    first, middle, last = chain
    if written_as == "ProxyJump a,b":
        entries = [_host_entry(clean_testbed, "far", last, f"ProxyJump {first.name},{middle.name}")]
    else:
        entries = [
            _host_entry(clean_testbed, "far", last, "ProxyJump mid"),
            _host_entry(clean_testbed, "mid", middle, f"ProxyJump {first.name}"),
        ]
    config = _ssh_config(clean_testbed, tmp_path, *entries)
    logs = [SshdLog(clean_testbed, dev) for dev in chain]
    with pytest.raises(OSError):  # no way to the target but through the hops
        socket.create_connection((last.address, last.port), timeout=1).close()

    target = open_target("far", _options(config, connect.timeouts))
    assert isinstance(target, SSHTarget)
    with target:
        seen = target.connection.run(["printenv", "SSH_CONNECTION"]).stdout.decode().split()
        report = target.profile(zoo / "mlp.onnx", ProfileConfig())
        hops: list[Connection] = []
        conn = target.connection
        while conn._jump is not None:
            conn = conn._jump
            hops.append(conn)
    assert seen[0] == middle.address and seen[2] == last.address
    assert report.latency_ms.n >= 100 and report.target and report.target["kind"] == "ssh"
    assert [hop.host.hostname for hop in hops] == [middle.address, first.address]

    # each device was logged into once, from the device before it (the first from here)
    sessions = [log.sessions(dev.user) for log, dev in zip(logs, chain, strict=True)]
    froms = [[address for address, _ in found] for found in sessions]
    assert froms == [[first.host_address], [first.address], [middle.address]]
    assert "Starting session" in logs[2].text() and "Starting session" not in logs[1].text()
    pids = [pid for found in sessions for _, pid in found]
    assert _wait_ended(pids) == [], "a hop's session outlived close()"


def test_every_hop_checks_its_host_key_and_a_failed_hop_leaves_nothing_open(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    chain: tuple[Device, Device, Device],
    tmp_path: Path,
) -> None:
    """The target's own ``StrictHostKeyChecking accept-new`` does not extend to its hops."""
    first, middle, last = chain
    unknown = tmp_path / "empty_known_hosts"
    unknown.write_text("")
    far_known = tmp_path / "far_known_hosts"
    far = _host_entry(
        clean_testbed,
        "far",
        last,
        f"ProxyJump {first.name},hop-b",
        "StrictHostKeyChecking accept-new",
    ).replace(str(clean_testbed.known_hosts), str(far_known))
    hop_b = _host_entry(clean_testbed, "hop-b", middle).replace(
        str(clean_testbed.known_hosts), str(unknown)
    )
    config = _ssh_config(clean_testbed, tmp_path, far, hop_b)
    log = SshdLog(clean_testbed, first)
    with (
        open_target("far", _options(config, connect.timeouts)) as target,
        pytest.raises(HostKeyError, match=r"^hop-b: unknown host key ssh-ed25519 SHA256:"),
    ):
        target.info()
    assert unknown.read_text() == "" and not far_known.exists()
    [(address, pid)] = log.sessions(first.user)
    assert address == first.host_address
    assert _wait_ended([pid]) == [], "the first hop stayed connected"


def test_a_hop_that_cannot_reach_the_next_times_out_with_the_connect_timeout(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    chain: tuple[Device, Device, Device],
    tmp_path: Path,
) -> None:
    first, middle, last = chain
    _ip(middle, "route", "replace", "blackhole", f"{first.address}/32")  # dev1 drops dev0
    entry = _host_entry(clean_testbed, "far", last, f"ProxyJump {first.name},{middle.name}")
    config = _ssh_config(clean_testbed, tmp_path, entry)
    started = time.monotonic()
    with (
        open_target("far", _options(config, Timeouts(connect=2, auth=2, command=10))) as target,
        pytest.raises(ConnectError, match=f"jump host {first.name} cannot reach {middle.address}"),
    ):
        target.info()
    assert time.monotonic() - started < 8


# -- the SSH agent ------------------------------------------------------------------


@contextmanager
def _ssh_agent(sock: Path) -> Iterator[Path]:
    """A private ``ssh-agent`` listening on ``sock``, stopped at the end."""
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ssh-agent did not start: {proc.communicate()[1]!r}")
            time.sleep(0.02)
        yield sock
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@contextmanager
def _hanging_up_agent(sock: Path) -> Iterator[Path]:
    """A socket at ``sock`` that accepts and at once closes: an agent gone bad."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def _stale_socket(sock: Path) -> Path:
    """A socket file nobody listens on, as a killed agent leaves behind."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock))
    return sock


@pytest.fixture
def keyless_home(clean_testbed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with the testbed's known_hosts and no key, so only an agent can log in."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(clean_testbed.known_hosts.read_text())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def agent_config(clean_testbed: Testbed, tmp_path: Path) -> Path:
    """ssh_config with a ``by-agent`` alias for dev0 that names no IdentityFile."""
    dev = clean_testbed.devices[0]
    entry = f"Host by-agent\n    HostName {dev.address}\n    User {dev.user}\n"
    return _ssh_config(clean_testbed, tmp_path, entry)


def _key_fingerprint(testbed: Testbed) -> str:
    done = subprocess.run(
        ["ssh-keygen", "-lf", str(testbed.identity)], capture_output=True, text=True, timeout=30
    )
    return done.stdout.split()[1]


def _probe_cli(testbed: Testbed, dev: Device) -> subprocess.CompletedProcess[str]:
    """``edgeship probe user@address``: ssh_config has no entry for the bare address."""
    return cli(
        testbed,
        "probe",
        "--target",
        f"{dev.user}@{dev.address}",
        "--python",
        str(DEVICE_PYTHON),
        "--connect-timeout",
        "5",
    )


def test_the_agent_key_logs_in_runs_deploys_and_profiles(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    keyless_home: Path,
    agent_config: Path,
    zoo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = clean_testbed.devices[0]
    log = SshdLog(clean_testbed, dev)
    with _ssh_agent(tmp_path / "agent.sock") as sock:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(clean_testbed.identity)], check=True, timeout=30)
        target = open_target("by-agent", _options(agent_config, connect.timeouts))
        assert isinstance(target, SSHTarget)
        assert target.host.identity_files == ()
        with target:
            assert target.connection.run(["whoami"]).stdout.decode().strip() == dev.user
            deployed = target.deploy(zoo / "mlp.onnx", "agent")
            report = target.profile(zoo / "mlp.onnx", ProfileConfig())
            target.store().remove("agent")
        done = _probe_cli(clean_testbed, dev)
    assert deployed.activated
    assert report.latency_ms.n >= 100
    assert done.returncode == 0, done.stderr
    accepted = re.findall(rf"Accepted publickey for {dev.user} .* (SHA256:\S+)", log.text())
    assert accepted and set(accepted) == {_key_fingerprint(clean_testbed)}


@pytest.mark.parametrize("agent", ["holds no key", "not set", "stale socket", "hangs up"])
def test_without_an_agent_key_authentication_fails_in_one_clear_line(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    keyless_home: Path,
    agent_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    agent: str,
) -> None:
    dev = clean_testbed.devices[0]
    sock = tmp_path / "agent.sock"
    with ExitStack() as stack:
        if agent == "holds no key":
            stack.enter_context(_ssh_agent(sock))
        elif agent == "stale socket":
            _stale_socket(sock)
        elif agent == "hangs up":
            stack.enter_context(_hanging_up_agent(sock))
        if agent != "not set":
            monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with (
            open_target("by-agent", _options(agent_config, connect.timeouts)) as target,
            pytest.raises(AuthenticationError) as failed,
        ):
            target.info()
        done = _probe_cli(clean_testbed, dev)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"by-agent: authentication failed for user {dev.user!r} at ")
    assert f"{dev.address}:22" in message and "ssh-add" in message
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"authentication failed for user {dev.user!r}" in done.stdout + done.stderr


@pytest.mark.parametrize("identities_only", [False, True])
def test_identities_only_keeps_the_agent_out(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    keyless_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    identities_only: bool,
) -> None:
    """The IdentityFile is a key the device does not know; the agent holds one it does:
    the agent logs in unless ``IdentitiesOnly yes`` confines login to the IdentityFile."""
    dev = clean_testbed.devices[0]
    stranger = tmp_path / "stranger_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        timeout=30,
    )
    entry = (
        f"Host by-file\n    HostName {dev.address}\n    User {dev.user}\n"
        f"    IdentityFile {stranger}\n" + ("    IdentitiesOnly yes\n" if identities_only else "")
    )
    config = _ssh_config(clean_testbed, tmp_path, entry)
    with _ssh_agent(tmp_path / "agent.sock") as sock:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(clean_testbed.identity)], check=True, timeout=30)
        with open_target("by-file", _options(config, connect.timeouts)) as target:
            assert isinstance(target, SSHTarget)
            if identities_only:
                with pytest.raises(AuthenticationError, match="authentication failed"):
                    target.connection.run(["true"])
            else:
                assert target.connection.run(["whoami"]).stdout.decode().strip() == dev.user
