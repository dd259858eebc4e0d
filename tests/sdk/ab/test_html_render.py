"""The HTML report in a real headless browser (Debian's chromium): it renders, with figures.

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


@pytest.fixture
def page(report_files: ReportFiles) -> Path:
    return report_files.html


def test_the_page_and_its_figures_render(chromium: str, page: Path) -> None:
    done = browse(chromium, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<h1>A/B: fp32 against int8, same</h1>" in dom
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]*)"', dom)
    assert len(images) == 7, [title for title, _ in images]
    for title, data in images:
        assert len(data) > 1000, title
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n"), title
    # the page's own check, run by the browser after load: every image decoded
    assert 'data-figures-loaded="7"' in dom


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
