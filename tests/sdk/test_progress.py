"""The transfer line: one device's bar, or a fleet's sum on the same single line."""

from __future__ import annotations

import io
import threading

from edgeship.progress import TransferProgress

MIB = 2**20


def _frames(stream: io.StringIO) -> list[str]:
    return [f for f in stream.getvalue().split("\r") if f]


def test_one_device_draws_its_bar_and_ends_the_line_when_done() -> None:
    out = io.StringIO()
    report = TransferProgress(["pi"], out).reporter("pi")
    report(MIB, 4 * MIB)
    report(4 * MIB, 4 * MIB)
    frames = _frames(out)
    assert frames[0] == "pi: [#######.......................] 1.0/4.0 MiB"
    assert frames[-1] == "pi: [##############################] 4.0/4.0 MiB\n"


def test_a_fleet_shares_one_line_that_sums_the_devices() -> None:
    out = io.StringIO()
    line = TransferProgress(["a", "b", "c"], out)
    a, b = line.reporter("a"), line.reporter("b")
    a(2 * MIB, 4 * MIB)
    b(1 * MIB, 4 * MIB)
    assert _frames(out)[-1].startswith("upload to 2 of 3 devices: [")
    assert _frames(out)[-1].endswith("] 3.0/8.0 MiB, 0 complete")
    a(4 * MIB, 4 * MIB)
    b(4 * MIB, 4 * MIB)  # "c" already had the blob: it never reports
    assert _frames(out)[-1].endswith("] 8.0/8.0 MiB, 2 complete\n")
    assert "\n" not in "".join(_frames(out)[:-1])  # one line until every upload finished


def test_concurrent_reports_do_not_interleave_within_a_frame() -> None:
    out = io.StringIO()
    line = TransferProgress([f"d{i}" for i in range(8)], out)
    reporters = [line.reporter(f"d{i}") for i in range(8)]

    def upload(report: object) -> None:
        for sent in range(1, 65):
            report(sent * MIB, 64 * MIB)  # type: ignore[operator]

    threads = [threading.Thread(target=upload, args=(r,)) for r in reporters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frames = _frames(out)
    assert all(f.startswith("upload to ") for f in frames)
    assert frames[-1].endswith("] 512.0/512.0 MiB, 8 complete\n")
