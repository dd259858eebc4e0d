"""The orphaned-lock decision, without a device: whose connection is gone from this host."""

from __future__ import annotations

import pytest

from edgeship.deploy import orphans
from edgeship.deploy.orphans import HolderRecord, parse


def _record(
    host: str = "laptop", started: str = "12345", port: int = 50000, group: int | None = 80
) -> HolderRecord:
    return HolderRecord(77, started, group, host, ("10.0.0.1", port), ("10.0.0.2", 22))


def test_records_parse_as_the_holder_writes_them() -> None:
    record = parse("v2 77 12345 80 laptop 10.0.0.1 50000 10.0.0.2 22\n")
    assert record == _record()
    # an older edgeship's holder: no process group to end if it is frozen
    assert parse("v1 77 12345 laptop 10.0.0.1 50000 10.0.0.2 22\n") == _record(group=None)
    assert parse("v2 77 12345 laptop 10.0.0.1 50000 10.0.0.2 22") is None
    assert parse("v1 77 12345 laptop") is None
    assert parse("v0 77 12345 laptop 10.0.0.1 50000 10.0.0.2 22") is None
    assert parse("v1 x 12345 laptop 10.0.0.1 50000 10.0.0.2 22") is None


def test_only_a_connection_of_this_host_that_it_no_longer_has_is_orphaned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(orphans, "_host_name", lambda: "laptop")
    live = {(("10.0.0.1", 50000), ("10.0.0.2", 22))}
    monkeypatch.setattr(orphans, "_established", lambda: live)
    assert not _record().orphaned()  # still open here
    assert _record(port=50001).orphaned()  # gone from this host
    assert not _record(host="ci-runner", port=50001).orphaned()  # another host's: wait
    assert not _record(started="-", port=50001).orphaned()  # no /proc there: cannot check
    assert not _record(port=0).orphaned()  # through a jump host: no socket of ours
    monkeypatch.setattr(orphans, "_established", lambda: None)
    assert not _record(port=50001).orphaned()  # this host does not say: wait
