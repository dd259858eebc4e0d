"""Hostile input and hostile peers, end to end: shell syntax in target names (ssh_config's
``Match exec`` would run it), known_hosts files with marker lines, peers that are not SSH
servers, and connections dropped early. Each failure is one line, never a traceback."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions, Timeouts
from edgeship.core.errors import ConfigError, ConnectError, HostKeyError, TargetError
from edgeship.targets import SSHTarget, open_target
from tools.testbed import Testbed

E2E_TIMEOUTS = Timeouts(connect=5, auth=5, command=60)
INVOKE_LEAKS = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)
"""For tests that run ``Match exec`` in-process: invoke leaves pipes to the collector."""


def _edgeship(*args: str, home: Path | None = None, timeout: float = 120) -> tuple[int, str]:
    """``edgeship ARGS`` (stdin empty: ``Match exec`` commands read it); exit status and
    stderr."""
    env = None
    if home is not None:
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "edgeship.cli.main", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return done.returncode, done.stderr


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# ------------------------------------------------------------------ 1. shell syntax


@pytest.fixture
def match_exec_config(testbed: Testbed, tmp_path: Path) -> Path:
    """The testbed's ssh_config behind a ``Match exec`` that puts the host name in a shell."""
    config = tmp_path / "ssh_config"
    config.write_text(
        'Match exec "test %h = x"\n    User nobody\n\n' + testbed.ssh_config.read_text()
    )
    return config


@pytest.mark.parametrize(
    "spec",
    [
        "x$(touch${IFS}MARKER)",
        "x`touch${IFS}MARKER`",
        "x;touch${IFS}MARKER",
        "x|touch${IFS}MARKER",
        "pi@x&&touch${IFS}MARKER",
    ],
)
def test_a_target_with_shell_syntax_runs_nothing(
    testbed: Testbed, match_exec_config: Path, tmp_path: Path, spec: str
) -> None:
    marker = tmp_path / "pwned"
    spec = spec.replace("MARKER", str(marker))
    status, stderr = _edgeship(
        "probe", f"--target={spec}", "--ssh-config", str(match_exec_config),
        "--targets", str(testbed.targets),
    )  # fmt: skip
    assert status != 0
    assert not marker.exists()
    line = _one_error_line(stderr)
    assert f"bad target {spec!r}" in line and "name contains invalid characters" in line


def test_a_targets_file_host_with_shell_syntax_runs_nothing(
    testbed: Testbed, match_exec_config: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    targets = tmp_path / "edgeship.toml"
    targets.write_text(f'[devices.evil]\nhost = "x$(touch${{IFS}}{marker})"\n')
    status, stderr = _edgeship(
        "probe", "evil", "--ssh-config", str(match_exec_config), "--targets", str(targets)
    )
    assert status != 0 and not marker.exists()
    line = _one_error_line(stderr)
    assert f"{targets}: device 'evil': bad host" in line


@pytest.fixture
def real_stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """paramiko runs ``Match exec`` through invoke, which reads our stdin (here a real
    one) and leaves its pipes to the garbage collector (collected here, quietly)."""
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@INVOKE_LEAKS
@pytest.mark.usefixtures("real_stdin")
def test_match_exec_configs_still_work_for_real_devices(
    clean_testbed: Testbed, match_exec_config: Path
) -> None:
    options = ConnectOptions(
        ssh_config=match_exec_config, targets_file=clean_testbed.targets, timeouts=E2E_TIMEOUTS
    )
    with open_target(clean_testbed.devices[0].name, options) as target:
        assert isinstance(target, SSHTarget)
        assert target.connection.run(["true"]).status == 0


@INVOKE_LEAKS
@pytest.mark.usefixtures("real_stdin")
def test_the_python_api_refuses_them_too(testbed: Testbed, match_exec_config: Path) -> None:
    options = ConnectOptions(ssh_config=match_exec_config, targets_file=testbed.targets)
    with pytest.raises(ConfigError, match="host name contains invalid characters"):
        open_target("x$(id)", options)


# ------------------------------------------------------------ 4. known_hosts markers


def _known_hosts_config(testbed: Testbed, directory: Path, lines: list[str]) -> ConnectOptions:
    """Connect options whose known_hosts is ``lines`` (instead of the testbed's file), in
    ``directory`` (``known_hosts`` and ``ssh_config``)."""
    directory.mkdir(exist_ok=True)
    known = directory / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    config = directory / "ssh_config"
    config.write_text(testbed.ssh_config.read_text().replace(str(testbed.known_hosts), str(known)))
    return ConnectOptions(ssh_config=config, targets_file=testbed.targets, timeouts=E2E_TIMEOUTS)


def _device_key(testbed: Testbed, index: int) -> str:
    """``TYPE BASE64`` of a device's host key, from the testbed's known_hosts."""
    address = testbed.devices[index].address
    for line in testbed.known_hosts.read_text().splitlines():
        names, *key = line.split()
        if address in names.split(","):
            return " ".join(key[:2])
    raise AssertionError(f"no known_hosts line for {address}")


def _run_true(options: ConnectOptions, testbed: Testbed, index: int = 0) -> None:
    with open_target(testbed.devices[index].name, options) as target:
        assert isinstance(target, SSHTarget)
        target.connection.run(["true"])


def test_cert_authority_and_revoked_lines_do_not_break_known_hosts(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    other = _device_key(clean_testbed, 1)
    lines = [
        f"@cert-authority *.example.com {other}",
        f"@revoked 192.0.2.1 {other}",
        "@cert-authority * ssh-ed25519 not-even-base64",
        *clean_testbed.known_hosts.read_text().splitlines(),
    ]
    _run_true(_known_hosts_config(clean_testbed, tmp_path, lines), clean_testbed)
    status, stderr = _edgeship(
        "probe", clean_testbed.devices[0].name, "--json",
        "--ssh-config", str(tmp_path / "ssh_config"), "--targets", str(clean_testbed.targets),
    )  # fmt: skip
    assert status == 0, stderr


def test_hashed_and_wildcard_known_hosts_lines_are_honoured(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[0]
    options = _known_hosts_config(
        clean_testbed, tmp_path, [f"{dev.address} {_device_key(clean_testbed, 0)}"]
    )
    subprocess.run(
        ["ssh-keygen", "-H", "-f", str(tmp_path / "known_hosts")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    assert dev.address not in (tmp_path / "known_hosts").read_text()
    _run_true(options, clean_testbed)
    prefix = dev.address.rsplit(".", 1)[0]
    line = f"{prefix}.*,!192.0.2.* {_device_key(clean_testbed, 0)}"
    _run_true(_known_hosts_config(clean_testbed, tmp_path / "wildcard", [line]), clean_testbed)


def test_a_stale_line_beside_the_right_one_connects_as_with_openssh(
    clean_testbed: Testbed, tmp_path: Path
) -> None:
    """Two lines of one key type for the device, the stale one first (another device's
    key): OpenSSH connects, since one of them matches, and so does edgeship."""
    dev = clean_testbed.devices[0]
    right = [
        line
        for line in clean_testbed.known_hosts.read_text().splitlines()
        if dev.address in line.split()[0]
    ]
    stale = [f"{line.split()[0]} {_device_key(clean_testbed, 1)}" for line in right]
    assert {line.split()[1] for line in stale} == {line.split()[1] for line in right}
    options = _known_hosts_config(clean_testbed, tmp_path, [*stale, *right])
    openssh = subprocess.run(
        ["ssh", "-F", str(tmp_path / "ssh_config"), dev.name, "true"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert openssh.returncode == 0, openssh.stderr
    _run_true(options, clean_testbed)
    only_stale = _known_hosts_config(clean_testbed, tmp_path / "stale", stale)
    with pytest.raises(HostKeyError, match="host key CHANGED"):
        _run_true(only_stale, clean_testbed)


@pytest.mark.parametrize("accept_new", [False, True], ids=["strict", "accept-new"])
def test_a_revoked_host_key_is_refused_with_a_clear_message(
    clean_testbed: Testbed, tmp_path: Path, accept_new: bool
) -> None:
    dev = clean_testbed.devices[0]
    key = _device_key(clean_testbed, 0)
    lines = [f"@revoked * {key}", *clean_testbed.known_hosts.read_text().splitlines()]
    options = _known_hosts_config(clean_testbed, tmp_path, lines)
    options = ConnectOptions(**{**options.__dict__, "accept_new_host_keys": accept_new})
    with pytest.raises(HostKeyError) as caught:
        _run_true(options, clean_testbed)
    message = str(caught.value)
    assert message.startswith(f"{dev.name}: host key ") and "is REVOKED" in message
    assert dev.host_key_fingerprint in message
    assert (tmp_path / "known_hosts").read_text().count("\n") == len(lines)


# ------------------------------------------------------- 9. not SSH, silent, dropped


@contextlib.contextmanager
def _http_server() -> Iterator[int]:
    """``python3 -m http.server`` on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        yield port
    finally:
        server.kill()
        server.wait()


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """Accepts connections on a free 127.0.0.1 port and never says anything."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def test_a_peer_that_is_not_an_ssh_server_is_one_line(add_onnx: Path, tmp_path: Path) -> None:
    with _http_server() as port:
        status, stderr = _edgeship(
            "profile", str(add_onnx), "--target", f"root@127.0.0.1:{port}", home=tmp_path
        )
    assert status != 0
    line = _one_error_line(stderr)
    assert line.startswith(f"error: root@127.0.0.1:{port}: 127.0.0.1:{port} is not an SSH server")


def test_a_silent_peer_is_a_timeout_not_no_existing_session(add_onnx: Path, tmp_path: Path) -> None:
    with _silent_server() as port:
        started = time.monotonic()
        status, stderr = _edgeship(
            "profile", str(add_onnx), "--target", f"root@127.0.0.1:{port}",
            "--connect-timeout", "2", home=tmp_path,
        )  # fmt: skip
        took = time.monotonic() - started
    assert status != 0
    line = _one_error_line(stderr)
    assert "did not send an SSH greeting within 2 s" in line and "No existing session" not in line
    assert took < 20


def test_a_connection_dropped_early_says_so_not_no_answer(
    clean_testbed: Testbed, connect: ConnectOptions
) -> None:
    """sshd's session killed just after the runtime started: the device closed the
    connection (or reset it); nothing went unanswered for 30 s."""
    dev = clean_testbed.devices[3]
    with open_target(dev.name, connect) as target:
        target.client()
        clean_testbed.kill_sessions(dev)
        with pytest.raises(TargetError) as caught:
            target.info()
    message = str(caught.value)
    assert message.startswith(f"{dev.name}: ")
    assert "no answer" not in message
    assert "the device closed the connection" in message or "reset" in message, message


def test_a_device_gone_silent_is_no_answer(clean_testbed: Testbed, connect: ConnectOptions) -> None:
    dev = clean_testbed.devices[3]
    options = ConnectOptions(
        **{**connect.__dict__, "timeouts": Timeouts(connect=2, auth=2, command=60, unresponsive=2)}
    )
    with open_target(dev.name, options) as target:
        assert isinstance(target, SSHTarget)
        target.connection.run(["true"])
        threading.Timer(0.5, clean_testbed.blackhole, (dev,)).start()
        with pytest.raises(ConnectError, match=r"during `sleep 60` \(no answer for 2 s\)"):
            target.connection.run(["sleep", "60"])


# ------------------------------------------------------------------ a deploy root it cannot use


def test_a_deploy_root_the_device_user_cannot_write_is_one_line(
    testbed: Testbed, add_onnx: Path
) -> None:
    dev = testbed.devices[0]
    status, stderr = _edgeship(
        "deploy", str(add_onnx), "--target", dev.name, "--deploy-root", "/etc",
        "--ssh-config", str(testbed.ssh_config), "--targets", str(testbed.targets),
    )  # fmt: skip
    assert status != 0
    line = _one_error_line(stderr)
    assert dev.name in line and "/etc" in line and "ermission denied" in line, line
