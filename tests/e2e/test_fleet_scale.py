"""A fleet command over the real testbed: `--forks` queues devices, rows stream, a dead
device fails its own row after its own timeout and the others are not held up."""

from __future__ import annotations

import re

from tests.e2e.conftest import cli
from tools.testbed import Testbed


def test_rows_stream_and_a_dead_device_fails_alone(clean_testbed: Testbed) -> None:
    names = [d.name for d in clean_testbed.devices]
    dead = clean_testbed.devices[0]
    clean_testbed.blackhole(dead)
    done = cli(
        clean_testbed, "info", "--target", "testbed", "--forks", "2", "--connect-timeout", "2",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = {
        m.group(1): (m.group(2), float(m.group(3)))
        for m in re.finditer(r"^(\S+)\s+(ok|failed)\s+([\d.]+) s", done.stdout, re.MULTILINE)
    }
    assert sorted(rows) == sorted(names)
    assert rows[dead.name][0] == "failed" and 1.5 <= rows[dead.name][1] < 10
    assert all(rows[n][0] == "ok" for n in names[1:])
    assert done.stderr.strip().splitlines()[-1] == f"error: 1 of 4 devices failed: {dead.name}"
    assert f"ConnectError: {dead.name}:" in done.stdout
