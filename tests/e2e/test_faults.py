"""Faults: dropped connections, corruption, full disks, bad keys, hangs and crashes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions, ProfileConfig, Timeouts
from edgeship.core.errors import (
    AuthenticationError,
    ConnectError,
    DeployError,
    HostKeyError,
    RemoteTimeout,
    RuntimeCrashed,
    TargetError,
)
from edgeship.targets import SSHTarget, open_target
from edgeship_runtime.measure import MeasurePolicy
from tests.e2e.conftest import cli
from tools.testbed import Testbed


def _target(
    testbed: Testbed, connect: ConnectOptions, index: int = 0, **changes: object
) -> SSHTarget:
    options = ConnectOptions(**{**connect.__dict__, **changes})  # type: ignore[arg-type]
    target = open_target(testbed.devices[index].name, options)
    assert isinstance(target, SSHTarget)
    return target


def _active_sha(testbed: Testbed, name: str, index: int = 0) -> str:
    dev = testbed.devices[index]
    path = dev.deploy_path / "models" / name / "current" / "model.onnx"
    return testbed.run_as(dev, ["sha256sum", str(path)], check=True).stdout.split()[0]


def _big_model(tmp_path: Path, zoo: Path, megabytes: int) -> Path:
    """The zoo MLP padded to ``megabytes``: a valid ONNX file is not needed to test transfer
    (deployed without the health check, which would refuse it)."""
    big = tmp_path / "big.onnx"
    big.write_bytes((zoo / "mlp.onnx").read_bytes() + b"\0" * (megabytes << 20))
    return big


def test_dropped_connection_mid_upload_leaves_the_active_version_intact(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    with _target(clean_testbed, connect) as target:
        good = target.deploy(zoo / "mlp.onnx", "drop")
    big = _big_model(tmp_path, zoo, 200)
    dropped = threading.Event()

    def drop_when_transfer_started(done: int, total: int) -> None:
        if done > (8 << 20) and not dropped.is_set():
            dropped.set()
            clean_testbed.kill_sessions(clean_testbed.devices[0])

    with _target(clean_testbed, connect) as target:
        target.store().progress = drop_when_transfer_started
        with pytest.raises(TargetError):
            target.deploy(big, "drop", health=None)
    assert dropped.is_set()
    assert _active_sha(clean_testbed, "drop") == good.sha256
    with _target(clean_testbed, connect) as target:  # a retry completes
        retried = target.deploy(big, "drop", health=None)
        assert retried.activated and retried.version == "v0002"
        target.store().remove("drop")


def test_a_device_gone_silent_mid_upload_fails_fast_and_keeps_the_active_version(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    device = clean_testbed.devices[0]
    with _target(clean_testbed, connect) as target:
        good = target.deploy(zoo / "mlp.onnx", "silent")
    big = _big_model(tmp_path, zoo, 200)
    silenced = threading.Event()

    def silence_when_transfer_started(done: int, total: int) -> None:
        if done > (8 << 20) and not silenced.is_set():
            silenced.set()
            clean_testbed.blackhole(device)

    timeouts = Timeouts(connect=2, auth=2, command=120, unresponsive=2)
    with _target(clean_testbed, connect, timeouts=timeouts) as target:
        target.store().progress = silence_when_transfer_started
        started = time.monotonic()
        with pytest.raises(DeployError, match=r"lost the connection: no answer for 2 s"):
            target.deploy(big, "silent", health=None)
        assert time.monotonic() - started < 8
    clean_testbed.blackhole(device, False)
    assert _active_sha(clean_testbed, "silent") == good.sha256
    with _target(clean_testbed, connect) as target:  # back on the network: a retry completes
        retried = target.deploy(big, "silent", health=None)
        assert retried.activated and retried.version == "v0002"
        target.store().remove("silent")


def test_corrupted_blob_is_caught_by_the_hash_and_never_activated(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    dev = clean_testbed.devices[0]
    with _target(clean_testbed, connect) as target:
        old = target.deploy(zoo / "mlp.onnx", "corrupt")
        new = target.deploy(zoo / "cnn.onnx", "corrupt")
        blob = dev.deploy_path / "blobs" / f"{old.sha256}.onnx"
        clean_testbed.run_as(dev, ["sh", "-c", f"printf garbage >> '{blob}'"], check=True)
        with pytest.raises(DeployError, match="corrupted"):
            target.store().rollback("corrupt")
        assert _active_sha(clean_testbed, "corrupt") == new.sha256
        # a deploy re-sends the removed blob, verified, and activates it
        again = target.deploy(zoo / "mlp.onnx", "corrupt")
        assert again.uploaded and again.activated
        assert _active_sha(clean_testbed, "corrupt") == old.sha256
        target.store().remove("corrupt")


def test_full_disk_is_a_clear_error_and_changes_nothing(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[2]
    clean_testbed.small_disk(dev, 8192)
    with _target(clean_testbed, connect, 2) as target:
        good = target.deploy(zoo / "mlp.onnx", "full")
        with pytest.raises(DeployError, match="not enough space"):
            target.deploy(_big_model(tmp_path, zoo, 16), "full", health=None)
        assert target.store().describe("full").active == good.version
    assert _active_sha(clean_testbed, "full", 2) == good.sha256


def test_a_disk_full_after_the_upload_is_one_line_and_leaves_no_half_made_version(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """The blob is on the device; only the version's small files are left to write when the
    disk fills (SFTP says no more than "Failure"): one NoSpace line naming the device and
    the space, a non-zero exit, the active version as it was, nothing half-made."""
    dev = clean_testbed.devices[2]
    clean_testbed.small_disk(dev, 8192)
    model = _big_model(tmp_path, zoo, 1)
    with _target(clean_testbed, connect, 2) as target:
        good = target.deploy(zoo / "mlp.onnx", "fill", health=None)
        target.store().put_blob(model)
    filler = dev.deploy_path / "filler"
    clean_testbed.run_as(dev, ["sh", "-c", f"cat /dev/zero > {filler}"])  # until ENOSPC
    done = cli(clean_testbed, "deploy", str(model), "--name", "fill", "--target", dev.name,
               "--no-health-check")  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert re.search(rf"{dev.name}: not enough space under .*: need .*, .* free", done.stderr)
    with _target(clean_testbed, connect, 2) as target:
        listed = target.store().describe("fill")
        assert listed.active == good.version and len(listed.versions) == 1
    assert not list((dev.deploy_path / "tmp").glob("*.part"))
    assert not list((dev.deploy_path / "models" / "fill" / "versions").glob("*.part"))


def test_unknown_host_key_is_refused_naming_the_fingerprint(
    clean_testbed: Testbed, connect: ConnectOptions, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[0]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(
        clean_testbed.ssh_config.read_text().replace(str(clean_testbed.known_hosts), str(empty))
    )
    with (
        _target(clean_testbed, connect, ssh_config=config) as target,
        pytest.raises(HostKeyError) as caught,
    ):
        target.info()
    assert "host key" in str(caught.value) and dev.host_key_fingerprint in str(caught.value)
    assert dev.name in str(caught.value)
    with _target(clean_testbed, connect, ssh_config=config, accept_new_host_keys=True) as target:
        assert target.info()["runtime"]["protocol"] == 2
    assert dev.address in empty.read_text()
    with _target(clean_testbed, connect, ssh_config=config) as target:  # now known
        assert target.info()["runtime"]["protocol"] == 2


def test_changed_host_key_is_refused_even_with_accept_new(
    clean_testbed: Testbed, connect: ConnectOptions, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[0]
    known = tmp_path / "known_hosts"
    lines = clean_testbed.known_hosts.read_text().splitlines()
    mine = next(line for line in lines if dev.address in line.split()[0].split(","))
    theirs = next(line for line in lines if dev.address not in line.split()[0].split(","))
    known.write_text(f"{dev.address} {' '.join(theirs.split()[1:])}\n")
    assert mine != known.read_text().strip()
    config = tmp_path / "ssh_config"
    config.write_text(
        clean_testbed.ssh_config.read_text().replace(str(clean_testbed.known_hosts), str(known))
    )
    with (
        _target(clean_testbed, connect, ssh_config=config, accept_new_host_keys=True) as target,
        pytest.raises(HostKeyError, match="CHANGED"),
    ):
        target.info()


def test_wrong_user_and_wrong_key_fail_authentication(
    clean_testbed: Testbed, connect: ConnectOptions, tmp_path: Path
) -> None:
    dev, other = clean_testbed.devices[0], clean_testbed.devices[1]
    with _target(clean_testbed, connect) as ok:
        assert ok.info()
    spec = f"{other.user}@{dev.name}"
    with open_target(spec, connect) as target, pytest.raises(AuthenticationError, match=other.user):
        target.info()
    stranger = tmp_path / "id_stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True, timeout=30
    )
    config = tmp_path / "ssh_config"
    config.write_text(
        clean_testbed.ssh_config.read_text().replace(str(clean_testbed.identity), str(stranger))
    )
    with (
        _target(clean_testbed, connect, ssh_config=config) as target,
        pytest.raises(AuthenticationError, match="authentication failed"),
    ):
        target.info()


def test_unreachable_host_times_out_instead_of_hanging(
    clean_testbed: Testbed, connect: ConnectOptions
) -> None:
    clean_testbed.blackhole(clean_testbed.devices[0])
    started = time.monotonic()
    with (
        _target(clean_testbed, connect, timeouts=Timeouts(connect=2, auth=2, command=10)) as t,
        pytest.raises(ConnectError, match="timed out"),
    ):
        t.info()
    assert time.monotonic() - started < 8


def test_a_device_gone_silent_mid_profile_is_lost_within_the_unresponsive_time(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    """Power pulled mid-request: nothing answers, not even TCP. The wait ends after
    ``unresponsive`` seconds with a lost-connection error, not after ``command``."""
    slow = ProfileConfig(policy=MeasurePolicy(min_seconds=8))  # outlives the detection
    timeouts = Timeouts(connect=2, auth=2, command=120, unresponsive=2)
    device = clean_testbed.devices[2]
    with _target(clean_testbed, connect, 2, timeouts=timeouts) as t:
        t.info()
        threading.Timer(1.0, clean_testbed.blackhole, (device,)).start()
        started = time.monotonic()
        with pytest.raises(ConnectError, match=r"lost the connection to .* during profile"):
            t.profile(zoo / "mlp.onnx", slow)
        assert time.monotonic() - started < 7
        # still gone: the next operation reconnects (and times out), never asks the dead
        # SFTP session, which would answer "no such file" to everything
        with pytest.raises(ConnectError, match="timed out"):
            t.store().exists(t.store().root)
        with pytest.raises(ConnectError, match="timed out"):
            t.info()
    # nobody could reach the device to stop its runtime: it ends with its request
    clean_testbed.blackhole(device, False)
    clean_testbed.run_as(device, ["pkill", "-KILL", "-f", "edgeship-runtime"])


def test_a_remote_command_on_a_silent_device_is_lost_not_timed_out(
    clean_testbed: Testbed, connect: ConnectOptions
) -> None:
    timeouts = Timeouts(connect=2, auth=2, command=120, unresponsive=2)
    with _target(clean_testbed, connect, 2, timeouts=timeouts) as t:
        t.connection.run(["true"])
        threading.Timer(0.5, clean_testbed.blackhole, (clean_testbed.devices[2],)).start()
        started = time.monotonic()
        with pytest.raises(ConnectError, match=r"lost the connection .* during `sleep 60`"):
            t.connection.run(["sleep", "60"])
        assert time.monotonic() - started < 8


def test_a_killed_host_leaves_no_runtime_computing_on_the_device(
    clean_testbed: Testbed, zoo: Path
) -> None:
    """The host process dies mid-profile (kill -9, a laptop lid): sshd closes the session's
    pipes and the runtime, with nobody to answer, exits instead of profiling on."""
    argv = [sys.executable, "-m", "edgeship.cli.main", "profile", str(zoo / "mlp.onnx")]
    argv += ["--target", clean_testbed.devices[1].name, "--min-seconds", "60"]
    argv += ["--ssh-config", str(clean_testbed.ssh_config), "--targets", str(clean_testbed.targets)]
    host = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _runtime_processes(clean_testbed, 1, wait=0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _runtime_processes(clean_testbed, 1, wait=0), "the profile never started"
        time.sleep(1.0)  # into the 60 s profile
    finally:
        host.kill()
        host.wait()
    assert _runtime_processes(clean_testbed, 1) == []


def test_a_hung_operation_times_out_and_leaves_no_process(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    slow = ProfileConfig(policy=MeasurePolicy(min_seconds=60))
    with _target(clean_testbed, connect, 1, timeouts=Timeouts(connect=5, auth=5, command=3)) as t:
        started = time.monotonic()
        with pytest.raises(RemoteTimeout, match="killed"):
            t.profile(zoo / "mlp.onnx", slow)
        assert time.monotonic() - started < 15
    assert _runtime_processes(clean_testbed, 1) == []


def test_a_crashed_runtime_is_a_structured_error(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    with _target(clean_testbed, connect, 1) as target:
        pid = target.client().hello["pid"]
        clean_testbed.run_as(clean_testbed.devices[1], ["kill", "-SEGV", str(pid)], check=True)
        with pytest.raises(RuntimeCrashed) as caught:
            target.info()
    assert caught.value.exit_status in (-11, 139)
    assert "SIGSEGV" in str(caught.value)
    assert _runtime_processes(clean_testbed, 1) == []


def _runtime_processes(testbed: Testbed, index: int, wait: float = 5) -> list[str]:
    """The device's runtime processes, once gone or after ``wait`` seconds."""
    dev = testbed.devices[index]
    deadline = time.monotonic() + wait
    while True:
        found = testbed.run_as(dev, ["pgrep", "-u", dev.user, "-f", "edgeship-runtime"])
        lines = found.stdout.split()
        if not lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_a_device_without_sftp_gets_a_clear_error(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    """A minimal image whose sshd offers no sftp subsystem (Dropbear without
    openssh-sftp-server): one line that says what is missing, not a paramiko EOF."""
    dev = clean_testbed.devices[3]
    config = clean_testbed.device_dir(dev) / "sshd_config"
    original = config.read_text()
    listener = int((clean_testbed.device_dir(dev) / "sshd.pid").read_text())
    try:
        config.write_text(original.replace("Subsystem sftp internal-sftp\n", ""))
        os.kill(listener, signal.SIGHUP)  # sshd re-reads its config for new connections
        time.sleep(0.5)
        with (
            _target(clean_testbed, connect, 3) as target,
            pytest.raises(ConnectError, match=r"cannot open SFTP .* needs the sftp subsystem"),
        ):
            target.deploy(zoo / "mlp.onnx", "no-sftp")
    finally:
        config.write_text(original)
        os.kill(listener, signal.SIGHUP)
        time.sleep(0.5)


def _stop_group(testbed: Testbed, dev: object, group: int) -> None:
    testbed.run_as(dev, ["kill", "-STOP", "--", f"-{group}"], check=True)  # type: ignore[arg-type]


def _group_alive(testbed: Testbed, dev: object, group: int) -> bool:
    done = testbed.run_as(dev, ["kill", "-0", "--", f"-{group}"])  # type: ignore[arg-type]
    return done.returncode == 0


def test_a_stopped_lock_holder_is_taken_over_within_the_unresponsive_time(
    clean_testbed: Testbed,
    connect: ConnectOptions,
    zoo: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deploy's lock holder stopped on the device (SIGSTOP: SIGTERM stays pending) is
    taken over by the next deploy once it has been stopped for ``--unresponsive`` s, with
    one line saying so, long before ``--lock-wait`` runs out."""
    dev = clean_testbed.devices[1]
    timeouts = Timeouts(connect=2, auth=2, command=60, unresponsive=3)
    with _target(clean_testbed, connect, 1) as holder, holder.store().locked():
        record = (dev.deploy_path / "lock.holder").read_text().split()
        group = int(record[3])
        _stop_group(clean_testbed, dev, group)
        with _target(clean_testbed, connect, 1, timeouts=timeouts, lock_wait=60) as target:
            started = time.monotonic()
            done = target.deploy(zoo / "mlp.onnx", "frozen-lock", health=None)
            took = time.monotonic() - started
        assert done.activated and took < 3 + 10, took
        assert not _group_alive(clean_testbed, dev, group)
    assert "took over the lock" in caplog.text and "stopped for over 3 s" in caplog.text
    with _target(clean_testbed, connect, 1) as target:
        target.store().remove("frozen-lock")


def test_a_deploy_with_a_frozen_runtime_ends_within_the_unresponsive_time(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path
) -> None:
    """The runtime stopped on the device answers nothing: the health check gives up after
    ``--unresponsive`` s (not ``--timeout``), ends the runtime (SIGCONT, SIGTERM, SIGKILL)
    and the lock, and the active version is as it was; the next deploy goes through."""
    dev = clean_testbed.devices[1]
    timeouts = Timeouts(connect=2, auth=2, command=120, unresponsive=3)
    with _target(clean_testbed, connect, 1, timeouts=timeouts) as target:
        good = target.deploy(zoo / "mlp.onnx", "frozen-rt")
        group = target.client().pipe.process_group
        assert group
        _stop_group(clean_testbed, dev, group)
        started = time.monotonic()
        with pytest.raises(DeployError, match="stopped"):
            target.deploy(zoo / "cnn.onnx", "frozen-rt")
        took = time.monotonic() - started
        assert took < 3 + 10, took
        assert not _group_alive(clean_testbed, dev, group)
    with _target(clean_testbed, connect, 1) as target:
        assert target.store().describe("frozen-rt").active == good.version
        assert target.deploy(zoo / "cnn.onnx", "frozen-rt").activated
        target.store().remove("frozen-rt")


def test_a_deploy_whose_upload_receiver_is_stopped_ends_within_the_unresponsive_time(
    clean_testbed: Testbed, connect: ConnectOptions, zoo: Path, tmp_path: Path
) -> None:
    """The upload's receiver stopped on the device takes nothing more: once the channel's
    window is full, the upload looks after ``--unresponsive`` s, finds it stopped, ends it
    and says so in one line (not after ``--timeout``); the active version is as it was."""
    dev = clean_testbed.devices[1]
    with _target(clean_testbed, connect, 1) as target:
        good = target.deploy(zoo / "mlp.onnx", "frozen-up")
    big = _big_model(tmp_path, zoo, 200)
    stopped: list[int] = []

    def stop_when_transfer_started(done: int, total: int) -> None:
        if done > (8 << 20) and not stopped:
            # the receiver is exec'd by the session's shell: its pid is its group
            found = clean_testbed.run_as(dev, ["pgrep", "-u", dev.user, "-f", "F_SETPIPE_SZ"])
            stopped.extend(int(pid) for pid in found.stdout.split())
            assert len(stopped) == 1, found
            _stop_group(clean_testbed, dev, stopped[0])

    timeouts = Timeouts(connect=2, auth=2, command=120, unresponsive=3)
    with _target(clean_testbed, connect, 1, timeouts=timeouts) as target:
        target.store().progress = stop_when_transfer_started
        started = time.monotonic()
        with pytest.raises(
            TargetError, match=r"`python3` is stopped \(frozen\) .* 3 s \(--unresponsive\)"
        ) as info:
            target.deploy(big, "frozen-up", health=None)
        took = time.monotonic() - started
        assert took < 3 + 10, took
        assert "\n" not in str(info.value)
        assert not _group_alive(clean_testbed, dev, stopped[0])
    assert _active_sha(clean_testbed, "frozen-up", 1) == good.sha256
    with _target(clean_testbed, connect, 1) as target:
        target.store().remove("frozen-up")


def test_a_slow_running_remote_command_is_not_ended(
    clean_testbed: Testbed, connect: ConnectOptions
) -> None:
    """A command that prints nothing for longer than ``--unresponsive`` but runs (not
    stopped) is looked at and left to finish."""
    timeouts = Timeouts(connect=2, auth=2, command=30, unresponsive=1)
    with _target(clean_testbed, connect, 2, timeouts=timeouts) as t:
        started = time.monotonic()
        assert t.connection.run(["sleep", "3.5"]).status == 0
        assert time.monotonic() - started >= 3.5
