"""Lines on stderr start on a line of their own, even after a progress bar that broke off."""

from __future__ import annotations

import io

import pytest

from edgeship.cli.output import CLEAR_LINE, print_error, print_stderr
from edgeship.core.errors import UsageError
from edgeship.core.progress import TransferProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_error_after_a_broken_off_bar_clears_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    TransferProgress(["pi"], terminal).reporter("pi")(2**20, 2 * 2**20)  # half, then lost
    print_error(UsageError("pi: the upload broke off"), as_json=False)
    bar, error = terminal.getvalue().rsplit(CLEAR_LINE, 1)
    assert bar.startswith(f"{CLEAR_LINE}pi: [###") and "\n" not in bar
    assert error == "error: pi: the upload broke off\n"


def test_without_a_terminal_lines_are_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    print_stderr("note: plain")
    assert stream.getvalue() == "note: plain\n"
