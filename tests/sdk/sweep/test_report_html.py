"""``sweep.html``: the sweep's tables (the Markdown's own rows) and its Pareto plots, in a
real headless browser (:mod:`tests.browser`), from a sweep driven by the fake executor."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions
from edgeship.core.views import Rows
from edgeship.sweep import SweepConfig, SweepReport, run_sweep
from edgeship.sweep.view import across_rows, speedup_rows, to_markdown, variant_rows
from tests import models
from tests.browser import dom_of, rendered, table_rows
from tests.sdk.sweep.fakes import FakeExecutor
from tests.sdk.sweep.test_runner import BOARDS, RECIPE


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[SweepReport, Path]:
    """3 variants × 3 boards: one variant that could not be made, one board unreachable."""
    tmp = tmp_path_factory.mktemp("sweep")
    devices = "".join(f'[devices.{b}]\nhost = "{b}.lab"\n\n' for b in BOARDS)
    lab = tmp / "lab.toml"
    lab.write_text(devices + f"[groups]\nlab = {json.dumps(BOARDS)}\n")
    recipe = tmp / "recipe.toml"
    recipe.write_text(RECIPE)
    model = models.add_model(tmp / "base.onnx")
    config = SweepConfig(
        model, recipe, "lab", tmp / "out", connect=ConnectOptions(targets_file=lab)
    )
    report = run_sweep(config, FakeExecutor(failing=("jetson",), broken=("slow",)))
    return report, tmp / "out"


def _cells(rows: Rows) -> list[list[str]]:
    headers, body = rows
    return [[html.escape(c, quote=True) for c in row] for row in [headers, *body]]


def test_the_page_shows_the_tables_and_the_pareto_plots(
    chromium: str, swept: tuple[SweepReport, Path]
) -> None:
    report, out = swept
    page = out / "sweep.html"
    dom = dom_of(chromium, page)
    # a plot per board with results (pi-1, pi-2; jetson failed) and one across boards
    assert rendered(dom, page) == (3, 3)
    for name in ("Pareto front on pi-1", "Pareto front on pi-2", "Pareto front across boards"):
        assert f'<img alt="{name}"' in dom
    assert "Pareto front on jetson" not in dom
    # the same rows as the Markdown report's, from the same fields
    assert table_rows(dom, "variants") == _cells(variant_rows(report))
    assert table_rows(dom, "speedups") == _cells(speedup_rows(report))
    assert table_rows(dom, "across") == _cells(across_rows(report))
    assert "<h2>Failed cells</h2>" in dom and "slow @ pi-1: CompressionError" in dom
    assert (out / "sweep.md").read_text() == to_markdown(report)


def test_every_column_is_named_and_the_base_is_a_row(swept: tuple[SweepReport, Path]) -> None:
    report, _ = swept
    headers, rows = speedup_rows(report)
    assert headers == ["variant", *BOARDS] and rows[-1][0] == "base"
    assert all(h.strip() for rows_ in (variant_rows(report), across_rows(report)) for h in rows_[0])
