"""The testbed itself: real sshds in namespaces, reachable, isolated, breakable.

These tests need root, iproute2 and openssh-server. They skip without them on
a developer machine and fail in CI (``CI`` set), where a skip would hide a
broken testbed that every e2e test depends on.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import tomllib

from tools.testbed import (
    DEVICE_PYTHON,
    Device,
    Testbed,
    TestbedError,
    cpucap,
    emulated,
    missing_requirements,
    proxy,
    rootfs,
)
from tools.testbed import testbed as testbed_module
from tools.testbed.cleanup import leftovers, proxy_pids

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e  # starts real sshds: the end-to-end tier

_missing = missing_requirements()
if _missing:
    reason = "testbed unavailable: " + "; ".join(_missing)
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _prefix() -> str:
    """A prefix no other run uses (parallel sessions, a developer's CLI testbed)."""
    return "tt" + secrets.token_hex(2)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with Testbed(2, tmp_path_factory.mktemp("testbed"), prefix=_prefix()) as tb:
        yield tb


@pytest.fixture(autouse=True)
def _undo_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "bed" in request.fixturenames:
        request.getfixturevalue("bed").reset_faults()


def ssh(
    bed: Testbed, dev: Device, command: str, timeout: float = 20, connect_timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on ``dev`` through the real OpenSSH client and ssh_config."""
    return subprocess.run(
        bed.ssh_argv(dev, command, connect_timeout=connect_timeout),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_openssh_client_reaches_each_device_as_its_user(bed: Testbed) -> None:
    for dev in bed.devices:
        proc = ssh(bed, dev, "id -un; hostname -I")
        assert proc.returncode == 0, proc.stderr
        user, addresses = proc.stdout.splitlines()
        assert user == dev.user
        assert addresses.split() == [dev.address]
    assert bed.devices[0].address != bed.devices[1].address


def test_devices_are_isolated_users(bed: Testbed) -> None:
    dev0, dev1 = bed.devices
    acc0, acc1 = pwd.getpwnam(dev0.user), pwd.getpwnam(dev1.user)
    assert acc0.pw_uid != acc1.pw_uid
    assert Path(acc0.pw_dir) == dev0.home != dev1.home
    assert dev0.deploy_path == dev0.home / ".edgeship"
    probe = bed.run_as(dev0, ["id", "-un"])
    assert probe.stdout.strip() == dev0.user
    intrude = bed.run_as(dev0, ["touch", str(dev1.home / "intruder")])
    assert intrude.returncode != 0
    assert "Permission denied" in intrude.stderr
    own = bed.run_as(dev0, ["sh", "-c", "mkdir -p ~/.edgeship && touch ~/.edgeship/mine"])
    assert own.returncode == 0, own.stderr
    assert (dev0.deploy_path / "mine").stat().st_uid == acc0.pw_uid


def test_run_as_is_inside_the_device_namespace(bed: Testbed) -> None:
    dev = bed.devices[1]
    proc = bed.run_as(dev, ["hostname", "-I"], check=True)
    assert proc.stdout.split() == [dev.address]


def test_keyscan_fingerprint_matches_device(bed: Testbed) -> None:
    for dev in bed.devices:
        scan = subprocess.run(
            ["ssh-keyscan", "-T", "5", "-t", "ed25519", dev.address],
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        )
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-f", "-"],
            input=scan.stdout,
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        )
        assert listed.stdout.split()[1] == dev.host_key_fingerprint


def test_paramiko_connects_with_known_hosts_and_key(bed: Testbed) -> None:
    dev = bed.devices[0]
    client = paramiko.SSHClient()
    client.load_host_keys(str(bed.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            dev.address,
            port=dev.port,
            username=dev.user,
            key_filename=str(bed.identity),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        _, stdout, _ = client.exec_command("id -un", timeout=10)
        assert stdout.read().decode().strip() == dev.user
    finally:
        client.close()


def test_files_written_for_clients(bed: Testbed) -> None:
    targets = tomllib.loads(bed.targets.read_text())
    names = [dev.name for dev in bed.devices]
    assert list(targets["devices"]) == names
    for dev in bed.devices:
        entry = targets["devices"][dev.name]
        assert entry == {
            "host": dev.name,
            "python": str(DEVICE_PYTHON),
            "deploy_root": "~/.edgeship",
            "labels": ["testbed"],
        }
    assert targets["groups"] == {"testbed": names}
    config = bed.ssh_config.read_text()
    assert all(f"Host {name}\n" in config for name in names)
    assert "StrictHostKeyChecking yes" in config
    assert bed.identity.stat().st_mode & 0o077 == 0


def test_device_python_runs_as_device_user(bed: Testbed) -> None:
    code = "import numpy, psutil, onnxruntime, ai_edge_litert, sys; print(sys.prefix)"
    proc = ssh(bed, bed.devices[1], f"{DEVICE_PYTHON} -c '{code}'", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(DEVICE_PYTHON.parent.parent)


def test_kill_sessions_drops_live_connection(bed: Testbed) -> None:
    dev = bed.devices[0]
    argv = bed.ssh_argv(dev, "echo ready; sleep 30")
    live = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert live.stdout is not None
        assert live.stdout.readline().strip() == "ready"
        started = time.monotonic()
        assert bed.kill_sessions(dev) >= 1
        assert live.wait(timeout=5) == 255
        assert time.monotonic() - started < 3
    finally:
        live.kill()
        live.communicate(timeout=5)
    after = ssh(bed, dev, "echo again")
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "again"


def test_blackhole_times_out_then_recovers(bed: Testbed) -> None:
    dev = bed.devices[1]
    bed.blackhole(dev, True)
    started = time.monotonic()
    proc = ssh(bed, dev, "true", connect_timeout=2)
    elapsed = time.monotonic() - started
    assert proc.returncode == 255
    assert "timed out" in proc.stderr, proc.stderr
    assert "refused" not in proc.stderr
    assert 1.5 < elapsed < 10
    bed.blackhole(dev, False)
    proc = ssh(bed, dev, "echo back", connect_timeout=5)
    assert proc.returncode == 0, proc.stderr


def test_small_disk_fills_up_then_restores(bed: Testbed) -> None:
    dev = bed.devices[0]
    bed.small_disk(dev, 64)
    write = "head -c 200000 /dev/zero > ~/.edgeship/blob"
    proc = ssh(bed, dev, write)
    assert proc.returncode != 0
    assert "No space left" in proc.stderr
    small = ssh(
        bed, dev, "rm ~/.edgeship/blob; head -c 16000 /dev/zero > ~/.edgeship/small && echo fits"
    )
    assert small.stdout.strip() == "fits", small.stderr
    bed.restore_disk(dev)
    assert not os.path.ismount(dev.deploy_path)
    proc = ssh(bed, dev, write)
    assert proc.returncode == 0, proc.stderr


def test_failed_up_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = testbed_module.sshd.render_config

    def broken_for_dev1(**kwargs: object) -> str:
        text = real(**kwargs)  # type: ignore[arg-type]
        return text + ("NoSuchOption yes\n" if str(kwargs["user"]).endswith("-dev1") else "")

    monkeypatch.setattr(testbed_module.sshd, "render_config", broken_for_dev1)
    tb = Testbed(2, tmp_path, prefix=_prefix(), device_python=False)
    with pytest.raises(TestbedError, match="NoSuchOption"):
        tb.up()
    assert leftovers(tb.prefix) == []


def test_cpu_cap_holds_every_ssh_session_to_its_share(tmp_path: Path) -> None:
    """A device capped at 0.1 cores gets ~0.1 CPU-s per wall second, in its SSH sessions
    and their children, and its cgroup is gone after down()."""
    busy = (
        "import time\n"
        "end = time.monotonic() + 1.0\n"
        "while time.monotonic() < end: pass\n"
        "print(time.process_time())"
    )
    try:
        cpucap.group_path("probe")
    except TestbedError as exc:  # an optional testbed feature, for the fleet benchmark
        pytest.skip(str(exc))
    prefix = _prefix()
    with Testbed(1, tmp_path, prefix=prefix, device_python=False, cpu_cap=0.1) as tb:
        dev = tb.devices[0]
        assert dev.cpu_cap == 0.1
        group = cpucap.group_path(dev.name)
        out = ssh(tb, dev, f"python3 -c {shlex.quote(busy)}")
        assert out.returncode == 0, out.stderr
        assert float(out.stdout) < 0.35  # uncapped it would be close to 1.0
        assert cpucap.throttled_us(group) > 0
    assert leftovers(prefix) == []
    assert not group.exists() and not group.parent.exists()


def test_cli_up_down_and_stale_purge(tmp_path: Path) -> None:
    prefix = _prefix()
    cli = [sys.executable, "-m", "tools.testbed"]
    up = subprocess.run(
        [
            *cli,
            "up",
            "-n",
            "1",
            "--workdir",
            str(tmp_path),
            "--prefix",
            prefix,
            "--cpus",
            "0",
            "--no-device-python",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    (dev,) = json.loads(up.stdout)
    assert dev["name"] == f"{prefix}-dev0" and dev["cpus"] == [0]
    try:
        # Simulate leftovers of a crashed run: up() must clear them first.
        subprocess.run(["ip", "netns", "add", f"{prefix}-dev7"], check=True, timeout=10)
        tb = Testbed(1, tmp_path / "again", prefix=prefix, device_python=False).up()
        assert [d.name for d in tb.devices] == [f"{prefix}-dev0"]
        assert (
            f"{prefix}-dev7"
            not in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, timeout=10
            ).stdout
        )
        tb.down()
    finally:
        down = subprocess.run(
            [*cli, "down", "--workdir", str(tmp_path), "--prefix", prefix],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert down.returncode == 0, down.stderr
    assert leftovers(prefix) == []


# -- emulated boards (tools/testbed/emulated.py, rootfs.py, proxy.py) ----------------------


def test_an_emulated_board_runs_its_own_arch_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """Its sshd, shell and Python are arm64 binaries under qemu-user; /sys is not there;
    down() unmounts and removes its root and stops its proxy."""
    if rootfs.missing_requirements("aarch64") or not rootfs.is_cached("aarch64"):
        if os.environ.get("CI"):  # .ci/run builds the root before the tests
            pytest.fail(f"no emulated board: {rootfs.missing_requirements('aarch64')}")
        pytest.skip("no cached aarch64 root (python -m tools.testbed rootfs aarch64)")
    prefix = _prefix()
    with Testbed(1, tmp_path, prefix=prefix, arch="aarch64") as arm:
        dev = arm.devices[0]
        done = ssh(arm, dev, "uname -m; python3 -c 'import platform; print(platform.machine())'")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["aarch64", "aarch64"]
        inside = arm.run_as(dev, ["sh", "-c", "pwd; id -un; ls /sys | wc -l; command -v flock"])
        assert inside.stdout.split() == [str(dev.home), dev.user, "0", "/usr/bin/flock"]
        assert dev.root and Path(dev.root, "etc/pip.conf").read_text().startswith("[global]")
        assert "python" not in arm.targets.read_text()  # a board nothing was set up on
        assert len(proxy_pids(prefix)) == 1  # its way to PyPI
    assert leftovers(prefix) == []
    assert not Path(emulated.root_dir(dev.name)).parent.exists()


def test_the_proxy_serves_package_registries_only() -> None:
    """CONNECT to anything but PyPI's hosts (port 443) is refused before any connection."""
    server = proxy._Server(("127.0.0.1", 0), proxy._Tunnel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        for request, status in [
            (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", b"403"),
            (b"CONNECT pypi.org:22 HTTP/1.1\r\n\r\n", b"403"),
            (b"GET http://pypi.org/simple/ HTTP/1.1\r\n\r\n", b"405"),
        ]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                assert sock.recv(100).split()[1] == status, request
    finally:
        server.shutdown()
        server.server_close()


def test_rootfs_cache_key_follows_what_the_root_is_built_from(tmp_path: Path) -> None:
    arm64 = rootfs.cache_key("aarch64")
    assert arm64 == rootfs.cache_key("aarch64", tuple(reversed(rootfs.PACKAGES)))
    assert arm64 != rootfs.cache_key("aarch64", (*rootfs.PACKAGES, "gcc"))
    assert arm64 != rootfs.cache_key("armv7l")
    assert rootfs.cached_root("aarch64").name == f"rootfs-arm64-{arm64}"
    with pytest.raises(TestbedError, match="no emulated board for arch 'mips'"):
        Testbed(1, tmp_path, arch="mips")


def test_rootfs_requirements_name_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs, "BINFMT_DIR", tmp_path)
    assert "binfmt_misc is not mounted" in rootfs.missing_requirements("aarch64")[0]
    (tmp_path / "status").write_text("enabled\n")
    assert "apt-get install -y qemu-user-static" in rootfs.missing_requirements("aarch64")[0]
    handler = tmp_path / "qemu-aarch64"
    handler.write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\n")
    assert "lacks the F flag" in rootfs.missing_requirements("aarch64")[0]
    handler.write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: PF\n")
    assert not [p for p in rootfs.missing_requirements("aarch64") if "binfmt" in p]


def test_down_leaves_nothing_behind(bed: Testbed) -> None:
    """Runs last in this module: tears the shared testbed down and inspects."""
    prefix = bed.prefix
    bed.small_disk(bed.devices[0], 64)  # a mount that down() must remove too
    bed.down()
    bed.down()  # idempotent
    assert leftovers(prefix) == []
    pattern = re.compile(rf"\b{prefix}-")
    netns = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    links = subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert not pattern.search(netns) and not pattern.search(links)
    assert not [e for e in pwd.getpwall() if e.pw_name.startswith(f"{prefix}-")]
    assert not pattern.search(Path("/proc/self/mountinfo").read_text())
    ps = subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert not [line for line in ps.splitlines() if "sshd" in line and pattern.search(line)]
