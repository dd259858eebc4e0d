"""A typo of a device or group of the targets file is told as one, with a suggestion,
before it becomes a DNS failure: every way of opening targets goes through this."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import edgeship
from edgeship.core.errors import UsageError
from edgeship.targets import open_targets


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DNS lookup fails (hermetic); the names looked up are listed."""
    asked: list[str] = []

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> list[object]:
        asked.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture
def files(tmp_path: Path) -> edgeship.ConnectOptions:
    """A targets file with device ``pi-kitchen``; an ssh config with ``pi-kitchn`` (a real
    host of that name) and the pattern ``cam-*``."""
    (tmp_path / "edgeship.toml").write_text('[devices.pi-kitchen]\nhost = "pi@192.0.2.1"\n')
    (tmp_path / "ssh_config").write_text("Host cam-*\n  User pi\n")
    return edgeship.ConnectOptions(
        targets_file=tmp_path / "edgeship.toml", ssh_config=tmp_path / "ssh_config"
    )


def test_a_misspelled_device_gets_a_suggestion(
    files: edgeship.ConnectOptions, add_onnx: Path, no_dns: list[str]
) -> None:
    with pytest.raises(UsageError, match="unknown target 'pi-kitchn'; did you mean 'pi-kitchen'"):
        edgeship.deploy(add_onnx, "pi-kitchn", options=files)
    assert no_dns == ["pi-kitchn"]


def test_a_close_name_the_ssh_config_knows_is_no_typo(
    files: edgeship.ConnectOptions, no_dns: list[str]
) -> None:
    assert files.ssh_config is not None
    files.ssh_config.write_text("Host pi-kitchn\n  HostName 192.0.2.6\n")
    assert [t.name for t in open_targets("pi-kitchn", files)] == ["pi-kitchn"]
    names = [t.name for t in open_targets("cam-1,pi-kitchen,local", files)]
    assert names == ["cam-1", "pi-kitchen", "local"]  # cam-1 is close to nothing
    assert no_dns == []


def test_a_close_name_dns_resolves_is_no_typo(
    files: edgeship.ConnectOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [])
    assert [t.name for t in open_targets("pi-kitchen2", files)] == ["pi-kitchen2"]
