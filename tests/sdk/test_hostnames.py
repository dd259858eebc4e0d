"""Host and user names with shell syntax are refused before ssh_config is read: its
``Match exec "... %h"`` runs a shell with the host name in it."""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from edgeship.core.errors import ConfigError
from edgeship.core.hostnames import host_name_problem, target_problem, user_name_problem
from edgeship.targets.devices import load_inventory
from edgeship.ssh.hostconfig import resolve_host

pytestmark = pytest.mark.filterwarnings(  # Match exec runs in-process: see the fixture
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)

ATTACKS = [
    "x$(touch${IFS}MARKER)",
    "x`touch${IFS}MARKER`",
    "x;touch${IFS}MARKER",
    "x&&touch${IFS}MARKER",
    "x|touch${IFS}MARKER",
    "x>MARKER",
    "pi@x$(touch${IFS}MARKER)",
    "x'$(touch${IFS}MARKER)'",
    'x"$(touch${IFS}MARKER)"',
    "x\\$(touch${IFS}MARKER)",
    "x\ntouch${IFS}MARKER",
    "pi;touch${IFS}MARKER@x",
    "pi$(touch${IFS}MARKER)@x",  # $ alone is allowed in users; ( is not
]


@pytest.fixture(autouse=True)
def _stdin_for_match_exec(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """paramiko runs ``Match exec`` through invoke, which reads our stdin (here a real
    one) and leaves its pipes to the garbage collector (collected here, quietly)."""
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _config_running(marker: Path) -> paramiko.SSHConfig:
    """An ssh_config whose lookup runs a shell with the host name in it."""
    return paramiko.SSHConfig.from_text(
        f'Match exec "test %h = x || touch {marker}.ran"\n    User nobody\n'
        "Host *\n    HostName 127.0.0.1\n"
    )


@pytest.mark.parametrize("attack", ATTACKS)
def test_shell_syntax_in_a_target_never_reaches_match_exec(attack: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = attack.replace("MARKER", str(marker))
    with pytest.raises(ConfigError, match=r"bad target .*(host|user) name contains invalid"):
        resolve_host(spec, _config_running(marker))
    assert list(tmp_path.iterdir()) == []  # neither the attack nor the Match exec ran


def test_match_exec_still_runs_for_a_good_name(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    host = resolve_host("pi@board-1.lan:2222", _config_running(marker))
    assert (host.user, host.hostname, host.port) == ("pi", "127.0.0.1", 2222)
    assert (tmp_path / "pwned.ran").exists()  # the config's own command ran, as it should


@pytest.mark.parametrize(
    "spec",
    [
        "board",
        "pi@10.0.0.5",
        "pi@10.0.0.5:2222",
        "root@[fe80::1%eth0]:22",
        "pi@board_1.example.com",
        "svc$@board",  # OpenSSH allows $ in user names (machine accounts)
        "dom\\user@board",
        "ünïcode-host",
    ],
)
def test_ordinary_names_pass(spec: str) -> None:
    assert target_problem(spec) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("-oProxyCommand=x", "starts with '-'"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\x00b", "control character"),
        ("a\x1bb", "control character"),
        ("a,b", "','"),
        ("a{b}", "'{'"),
    ],
)
def test_host_name_problems_name_the_character(name: str, problem: str) -> None:
    found = host_name_problem(name)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    ("name", "problem"),
    [("-l", "starts with '-'"), ("pi\\", "trailing backslash"), ("p(i)", "'('")],
)
def test_user_name_problems_name_the_character(name: str, problem: str) -> None:
    found = user_name_problem(name)
    assert found is not None and problem in found


def test_the_error_is_one_line_naming_the_target() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_host("x\n$(id)", paramiko.SSHConfig())
    assert "\n" not in str(caught.value)
    assert str(caught.value) == (
        "bad target 'x\\n$(id)': host name contains invalid characters (whitespace)"
    )


def test_a_targets_file_host_with_shell_syntax_is_refused_on_load(tmp_path: Path) -> None:
    targets = tmp_path / "edgeship.toml"
    targets.write_text('[devices.evil]\nhost = "pi@x$(touch${IFS}/tmp/pwned)"\n')
    with pytest.raises(ConfigError) as caught:
        load_inventory(targets)
    message = str(caught.value)
    assert message.startswith(f"{targets}: device 'evil': bad host 'pi@x$(touch")
    assert message.endswith("host name contains invalid characters ('$')")
