"""The HTML report in a real headless browser (Debian's chromium, :mod:`tests.browser`):
it renders, with its figures, its tables, the sessions' validity and the per-op-type diffs.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from edgeship.ab.reports import ReportFiles
from edgeship.ab.result import ABReport
from tests.browser import browse, dom_of, table_rows
from tests.sdk.ab import fakes


@pytest.fixture(scope="module")
def page(report_files: ReportFiles) -> Path:
    return report_files.html


@pytest.fixture(scope="module")
def dom(chromium: str, page: Path) -> str:
    return dom_of(chromium, page)


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
