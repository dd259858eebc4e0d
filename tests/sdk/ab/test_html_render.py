"""The HTML report in a real headless browser (Debian's chromium): it renders, with its
figures, its tables, the sessions' validity and the per-op-type diffs.

Skips when chromium is not installed, except in CI (``CI`` set), where it fails: CI
installs chromium, and a skip there would hide a broken report.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgeship.ab.reports import ReportFiles
from edgeship.ab.result import ABReport
from tests.sdk.ab import fakes

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


@pytest.fixture(scope="module")
def chromium() -> str:
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


@pytest.fixture(scope="module")
def page(report_files: ReportFiles) -> Path:
    return report_files.html


@pytest.fixture(scope="module")
def dom(chromium: str, page: Path) -> str:
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


def test_the_page_and_its_figures_render(dom: str) -> None:
    assert "<h1>A/B: fp32 against int8, same</h1>" in dom
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]*)"', dom)
    assert len(images) == 7, [title for title, _ in images]
    for title, data in images:
        assert len(data) > 1000, title
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n"), title
    # the page's own check, run by the browser after load: every image decoded
    assert 'data-figures-loaded="7"' in dom


def test_the_validity_and_op_diff_sections_render(
    dom: str, page: Path, fake_report: ABReport
) -> None:
    # every table laid out with a height, the new ones included (the page's own count)
    assert f'data-tables-shown="{page.read_text().count("<table")}"' in dom
    for device in fake_report.devices:
        name = device.target["name"]
        assert f'<h3 id="validity-{name}">Validity on {name}</h3>' in dom
        header, *sessions = table_rows(dom, f"validity-table-{name}")
        assert header[:3] == ["session", "verdict", "unstable models"]
        assert len(sessions) == fake_report.design.sessions
        assert {s[1] for s in sessions[:-1]} == {"stable"}
        last = sessions[-1]
        assert last[1:3] == ["unstable", "fp32, int8, same"] and last[-1] == fakes.GOVERNOR
        assert '<td class="t unstable">unstable</td>' in dom  # coloured, as the CSS says
        header, *ops = table_rows(dom, f"ops-table-{name}-int8")
        assert header == ["op type", "fp32 ms", "fp32 %", "int8 ms", "int8 %", "Δ ms", "change"]
        change = {row[0]: row[-1] for row in ops}
        assert change["Conv"] == "only in fp32" and change["ConvInteger"] == "only in int8"
        assert change["Gemm"] == "faster"
        assert f"{name}: {name} · aarch64" in dom and "inputs x: 1×1×8×8 float32" in dom


def test_a_screenshot_is_not_blank(chromium: str, page: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    done = browse(chromium, page, f"--screenshot={shot}", "--window-size=1200,1600")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    ink = np.any(pixels < 0.9, axis=-1).mean()  # share of pixels that are not near-white
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert 0.02 < ink < 0.9 and colours > 50, (ink, colours)
