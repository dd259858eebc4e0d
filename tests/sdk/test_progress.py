"""The transfer line: one device's bar, or a fleet's sum on the same single line."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from edgeship.cli.fleet_view import FleetTable
from edgeship.cli.output import print_stderr
from edgeship.targets.fleet import DeviceResult, FleetProgress
from edgeship.core.progress import (
    CLEAR_LINE,
    StatusLine,
    TransferProgress,
    bar,
    line_on,
    transfer_reporters,
)

MIB = 2**20


def _frames(stream: io.StringIO) -> list[str]:
    return [f for f in stream.getvalue().split(CLEAR_LINE) if f]


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


# ---------------------------------------------------------------- the status line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    """What each redraw left on the screen (every frame starts by erasing the line)."""
    return [f for f in stream.getvalue().split(CLEAR_LINE) if f]


def test_a_status_line_redraws_in_place_and_ends_with_a_newline() -> None:
    out = Terminal()
    line = StatusLine(out, width=200)
    line.show("pi", "session 1 of 2")
    line.show("pi", "session 2 of 2")
    line.done("pi")
    assert _lines(out) == ["pi: session 1 of 2", "pi: session 2 of 2\n"]
    line.close()  # nothing open: nothing more
    assert _lines(out)[-1] == "pi: session 2 of 2\n"


def test_a_ticking_entry_shows_the_seconds_since_it_was_set() -> None:
    out, clock = Terminal(), Clock()
    line = StatusLine(out, width=200, clock=clock, tick_s=3600)
    line.show("", "cnn.onnx: timing", ticking=True)
    clock.now += 7.2
    line.refresh()
    assert _lines(out) == ["cnn.onnx: timing · 0 s", "cnn.onnx: timing · 7 s"]
    line.close()
    assert out.getvalue().endswith("· 7 s\n")  # a line left open is ended on close


def test_the_ticker_redraws_while_the_device_works() -> None:
    out = Terminal()
    with StatusLine(out, width=200, tick_s=0.01) as line:
        line.show("local", "waiting", ticking=True)
        deadline = time.monotonic() + 5
        while len(_lines(out)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(_lines(out)) >= 3 and all(f.startswith("local: waiting · ") for f in _lines(out))


def test_devices_share_one_line_until_the_last_is_done() -> None:
    out = Terminal()
    line = StatusLine(out, width=200)
    line.show("a", "trial 1 of 4")
    line.show("b", "trial 3 of 4")
    assert _lines(out)[-1] == "a: trial 1 of 4 | b: trial 3 of 4"
    line.done("a")
    assert _lines(out)[-1] == "b: trial 3 of 4"
    line.done("a")  # twice: nothing
    line.done("b")
    assert out.getvalue().count("\n") == 1 and out.getvalue().endswith("b: trial 3 of 4\n")


def test_a_line_wider_than_the_terminal_is_cut_to_stay_one_line() -> None:
    out = Terminal()
    StatusLine(out, width=20).show("jetson-orin", "latency session 10 of 10")
    (frame,) = _lines(out)
    assert frame == "jetson-orin: laten…" and len(frame) == 19


def test_no_terminal_or_not_live_writes_nothing() -> None:
    for line in (StatusLine(io.StringIO()), StatusLine(Terminal(), live=False)):
        line.show("pi", "epoch 1 of 3", ticking=True)
        line.done("pi")
        line.close()
        assert line.stream.getvalue() == ""  # type: ignore[attr-defined]


def test_concurrent_devices_never_tear_a_frame() -> None:
    out = Terminal()
    line = StatusLine(out, width=10_000)

    def work(name: str) -> None:
        for i in range(200):
            line.show(name, f"step {i}")
        line.done(name)

    threads = [threading.Thread(target=work, args=(f"d{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frames = [f.rstrip("\n") for f in _lines(out)]
    entry = re.compile(r"d\d: step \d+")
    assert all(all(entry.fullmatch(p) for p in f.split(" | ")) for f in frames)
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") <= 6


def test_the_bar_is_shared_with_the_transfer_line() -> None:
    assert bar(1, 4) == "[#######.......................]"
    assert bar(0, 0) == "[" + "#" * 30 + "]"  # nothing to do is done


# ---------------------------------------------------------------- one line, several writers


def test_the_upload_bar_is_an_entry_of_the_open_status_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("COLUMNS", "200")
    with StatusLine(err, width=200) as line:
        assert line_on(err) is line
        line.show("a", "latency session 1 of 4", ticking=True)
        a, b = transfer_reporters(["a", "b"]).values()
        a(MIB, 2 * MIB)
        assert _lines(err)[-1].startswith("a: latency session 1 of 4 · 0 s | upload to 1 of 2 ")
        a(2 * MIB, 2 * MIB)  # every upload so far complete: the bar leaves the line
        assert _lines(err)[-1].startswith("a: latency session 1 of 4 · ")
        assert "upload" not in _lines(err)[-1] and "\n" not in err.getvalue()
        b(MIB, MIB)
    assert line_on(err) is None  # closed: no longer the stream's line
    assert all("\r" not in f for f in _lines(err))  # every redraw erases the whole line


def test_a_fleet_count_and_rows_go_through_the_open_status_line() -> None:
    out, err = io.StringIO(), Terminal()
    with StatusLine(err, width=200) as line:
        table = FleetTable(["a", "b", "c"], str, out, err)
        line.show("b", "trial 2 of 4")
        table.row(DeviceResult("a", value="ok"), FleetProgress(1, 2, 0, 3))
        assert _lines(err)[-1] == "b: trial 2 of 4 | 1/3 done, 2 running, 0 queued"
        line.done("b")  # the count stays: the fleet is not done
        assert _lines(err)[-1] == "1/3 done, 2 running, 0 queued"
        table.row(DeviceResult("b", value="ok"), FleetProgress(2, 1, 0, 3))
        table.row(DeviceResult("c", value="ok"), FleetProgress(3, 0, 0, 3))
    assert [r.split()[0] for r in out.getvalue().splitlines()] == ["device", "a", "b", "c"]
    assert err.getvalue().endswith(CLEAR_LINE) and "\n" not in err.getvalue()  # no count left


def test_an_error_line_goes_above_the_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    with StatusLine(err, width=200) as line:
        line.show("pi", "epoch 1 of 3")
        print_stderr("error: b: unreachable")
    assert err.getvalue().split(CLEAR_LINE)[1:] == [
        "pi: epoch 1 of 3",
        "error: b: unreachable\n",
        "pi: epoch 1 of 3\n",  # drawn again under it, and ended on close
    ]
