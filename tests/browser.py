"""A real headless browser (Debian's chromium) for the tests that open a report's HTML:
the page as the browser holds it after load, and a screenshot.

The ``chromium`` fixture (``tests/conftest.py``) skips when chromium is not installed,
except in CI (``CI`` set), where it fails: CI installs chromium, and a skip there would
hide a broken report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str:
    """The browser's path; a skip (a failure in CI) when there is none."""
    found = next((path for b in BROWSERS if (path := shutil.which(b))), None)
    if found is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def browse(chromium: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="edgeship-chromium-") as profile:
        return subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
        )


def dom_of(chromium: str, page: Path) -> str:
    """The page's DOM as the browser holds it after load (its script has run)."""
    done = browse(chromium, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def table_rows(dom: str, table_id: str) -> list[list[str]]:
    """The cells' text of each row of the table ``table_id`` (its header row first)."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.S)
    assert table is not None, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]


def rendered(dom: str, page: Path) -> tuple[int, int]:
    """(figures, tables) of ``page``, after checking that the browser decoded every figure
    and laid out every table with a height (the page's own count, made after load)."""
    text = page.read_text()
    figures, tables = text.count("<img "), text.count("<table")
    assert f'data-figures-loaded="{figures}"' in dom
    assert f'data-tables-shown="{tables}"' in dom
    return figures, tables
