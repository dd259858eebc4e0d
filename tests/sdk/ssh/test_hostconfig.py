"""ProxyJump chains and ``%`` tokens resolved like OpenSSH does (no network)."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from edgeship.core.errors import ConfigError
from edgeship.ssh.hostconfig import (
    HostSpec,
    SSHConfig,
    jump_chain,
    jump_host,
    load_ssh_config,
    resolve_host,
)

CONFIG = """
Host a
    HostName 10.0.0.1
    User alice
    Port 2201
    IdentityFile /keys/a

Host b
    HostName 10.0.0.2
    User bob
    IdentityFile /keys/b
    ProxyJump a

Host c
    HostName 10.0.0.3
    User carol

Host far
    HostName 10.0.0.9
    User fred
    ProxyJump a,b,c

Host loop1
    ProxyJump loop2

Host loop2
    ProxyJump loop1
"""


def _config(target_jump: str | None = None) -> paramiko.SSHConfig:
    """CONFIG, plus a host ``t`` whose ProxyJump is ``target_jump``."""
    extra = f"Host t\n    HostName 10.0.0.99\n    ProxyJump {target_jump}\n"
    return paramiko.SSHConfig.from_text(CONFIG + (extra if target_jump else ""))


def _chain(target_jump: str) -> list[HostSpec]:
    config = _config(target_jump)
    return list(jump_chain(resolve_host("t", config), config))


@pytest.mark.parametrize("target_jump", [None, "none", "NONE"])
def test_a_host_without_proxyjump_is_reached_directly(target_jump: str | None) -> None:
    config = _config(target_jump)
    host = resolve_host("t", config)
    assert jump_host(host, config) is None
    assert jump_chain(host, config) == ()


def test_the_jump_host_is_the_last_hop_with_the_earlier_hops_as_its_proxyjump() -> None:
    config = _config()
    hop = jump_host(resolve_host("far", config), config)
    assert hop is not None
    assert (hop.alias, hop.hostname, hop.user) == ("c", "10.0.0.3", "carol")
    assert hop.proxy_jump == "a,b"


def test_each_hop_keeps_its_own_ssh_config_entry() -> None:
    config = _config()
    chain = jump_chain(resolve_host("far", config), config)
    assert [(h.alias, h.hostname, h.port, h.user) for h in chain] == [
        ("a", "10.0.0.1", 2201, "alice"),
        ("b", "10.0.0.2", 22, "bob"),
        ("c", "10.0.0.3", 22, "carol"),
    ]
    assert [h.identity_files for h in chain] == [("/keys/a",), ("/keys/b",), ()]


def test_an_explicit_chain_overrides_a_hops_own_proxyjump() -> None:
    """``ProxyJump c,b``: b is reached through c, not through the ``a`` of its own entry
    (as OpenSSH's ``-J c b`` wins over b's ProxyJump)."""
    assert [h.alias for h in _chain("c,b")] == ["c", "b"]


def test_a_single_hop_follows_its_own_proxyjump() -> None:
    config = _config("b")
    hop = jump_host(resolve_host("t", config), config)
    assert hop is not None and hop.alias == "b" and hop.proxy_jump == "a"
    assert [h.alias for h in _chain("b")] == ["a", "b"]


def test_hops_may_be_user_at_host_port_and_ssh_urls() -> None:
    chain = _chain("ops@10.1.1.1:2222, ssh://root@b ,c")
    assert [(h.user, h.hostname, h.port) for h in chain] == [
        ("ops", "10.1.1.1", 2222),
        ("root", "10.0.0.2", 22),
        ("carol", "10.0.0.3", 22),
    ]
    assert chain[1].identity_files == ("/keys/b",)


def test_the_same_hop_twice_is_not_a_loop() -> None:
    assert [h.alias for h in _chain("c,c")] == ["c", "c"]


def test_a_proxyjump_loop_is_a_config_error() -> None:
    config = _config()
    with pytest.raises(ConfigError) as caught:
        jump_chain(resolve_host("loop1", config), config)
    assert str(caught.value) == "loop1: ProxyJump loops in ssh_config: loop1 via loop2 via loop1"


# ------------------------------------------------------------ host names taken as written

TOKENS = """
Host *.lan
    ProxyCommand nc %h %p
Host *
    User pi
    IdentityFile ~/.ssh/id-%r@%h
"""


@pytest.mark.parametrize("name", ["%u", "a%rb", "%d.lan", "%%", "~x"])
def test_a_host_name_is_never_token_expanded(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As OpenSSH: ``edgeship probe '%u'`` connects to a host named ``%u``, and ssh_config's
    own ``%h`` puts the name in as written, its ``%`` and ``~`` left alone."""
    monkeypatch.setenv("HOME", str(tmp_path))
    config = SSHConfig.from_text(TOKENS)
    host = resolve_host(name, config)
    assert host.hostname == name
    assert host.identity_files == (f"{tmp_path}/.ssh/id-pi@{name}",)
    if name.endswith(".lan"):
        assert config.lookup(name)["proxycommand"] == f"nc {name} 22"


def test_ssh_configs_own_tokens_still_expand_as_openssh_does() -> None:
    config = SSHConfig.from_text("Host pi\n    HostName %h.lan\n    ProxyCommand nc %h %p 100%%\n")
    found = config.lookup("pi")
    assert found["hostname"] == "pi.lan"
    assert found["proxycommand"] == "nc pi.lan 22 100%"


def test_ssh_config_files_are_read_with_openssh_tokens(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(TOKENS)
    assert isinstance(load_ssh_config(path), SSHConfig)
