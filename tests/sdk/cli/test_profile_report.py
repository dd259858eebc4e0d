"""``edgeship profile --report DIR`` on the zoo's trained models (real ONNX Runtime and
LiteRT sessions): the files, their tables and figures drawn from the reports' fields, the
page in a real headless browser (:mod:`tests.browser`), and the ``next:`` line."""

from __future__ import annotations

import contextlib
import html
import io
import json
from pathlib import Path

import pytest

from edgeship import ProfileReport
from edgeship.cli.main import main
from edgeship.cli.measure_view import ops_node_rows, ops_type_rows
from edgeship.cli.output import profile_rows
from edgeship.core.views import Rows
from tests.browser import dom_of, rendered, table_rows
from tests.sdk.conftest import Run

RUNS = 60
QUICK = ["--runs", str(RUNS), "--warmup", "2", "--threads", "1", "--min-seconds", "0"]


@pytest.fixture(scope="module")
def written(zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The report directory of one profile of mlp.onnx and mlp.tflite with --ops, and the
    command's stdout and stderr."""
    directory = tmp_path_factory.mktemp("profile") / "report"
    out, err = io.StringIO(), io.StringIO()
    models = [zoo / "mlp.onnx", zoo / "mlp.tflite"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["profile", *map(str, models), *QUICK, "--ops", "--report", str(directory)])
    assert rc == 0, err.getvalue()
    return directory, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def reports(written: tuple[Path, str, str]) -> list[ProfileReport]:
    return [
        ProfileReport.from_dict(d) for d in json.loads((written[0] / "profile.json").read_text())
    ]


def test_the_files_hold_every_run_and_the_figures(
    written: tuple[Path, str, str], reports: list[ProfileReport]
) -> None:
    directory, _, err = written
    assert [r.model.path.rsplit("/", 1)[-1] for r in reports] == ["mlp.onnx", "mlp.tflite"]
    # the samples were asked of the runtime for the distribution, as --samples does
    assert all(r.samples_ms is not None and len(r.samples_ms) >= RUNS for r in reports)
    onnx, tflite = reports
    assert onnx.ops is not None and onnx.ops.available and onnx.ops.op_types
    assert tflite.ops is not None and not tflite.ops.available
    figures = sorted(p.name for p in (directory / "figures").iterdir())
    assert figures == ["latency-local.png", "ops-local-mlp-onnx.png"]
    assert f"report: {directory / 'profile.html'} {directory / 'profile.md'}" in err
    markdown = (directory / "profile.md").read_text()
    assert "![Latency distribution on local](figures/latency-local.png)" in markdown
    assert "per-op timing: not exposed by LiteRT's Python API" in markdown


def _cells(rows: Rows) -> list[list[str]]:
    """The rows as the browser shows them (escaped, as in the page)."""
    headers, body = rows
    return [[html.escape(c, quote=True) for c in row] for row in [headers, *body]]


def test_the_page_renders_the_terminals_figures(
    chromium: str, written: tuple[Path, str, str], reports: list[ProfileReport]
) -> None:
    page = written[0] / "profile.html"
    dom = dom_of(chromium, page)
    assert rendered(dom, page) == (2, 3)  # latency and operator figures; three tables
    # every table is the terminal's rows, from the same fields
    assert table_rows(dom, "profile-table-local") == _cells(profile_rows(reports))
    ops = reports[0].ops
    assert ops is not None
    assert table_rows(dom, "ops-nodes-local-mlp-onnx") == _cells(ops_node_rows(ops))
    assert table_rows(dom, "ops-types-local-mlp-onnx") == _cells(ops_type_rows(ops))
    assert "operators " in dom and "profiler overhead" in dom
    for name in ("mlp.onnx", "mlp.tflite"):  # each model's validity verdict
        assert f"<li>{name}: stable (" in dom or f"<li>warning: {name}: unstable: " in dom
    assert "Latency distribution on local" in dom and "Operators of mlp.onnx on local" in dom


def test_the_command_ends_with_one_next_line(written: tuple[Path, str, str]) -> None:
    _, out, err = written
    lines = [line for line in err.splitlines() if line.startswith("next: ")]
    assert len(lines) == 1 and "next:" not in out
    assert lines[0].startswith("next: edgeship ab ") and lines[0].endswith(
        "mlp.tflite (is the difference real?)"
    )
    assert err.rstrip().endswith(lines[0])  # the last line


def test_with_json_no_next_line_and_the_report_still_written(
    edgeship: Run, zoo: Path, tmp_path: Path
) -> None:
    rc, out, err = edgeship("profile", zoo / "mlp.onnx", *QUICK, "--json", "--report", tmp_path)
    assert rc == 0, err
    (data,) = json.loads(out)  # stdout: the one JSON document
    assert len(data["samples_ms"]) >= RUNS
    assert "next:" not in out + err and "report:" not in err
    assert json.loads((tmp_path / "profile.json").read_text()) == [data]


def test_a_report_directory_that_cannot_be_made_is_one_line(
    edgeship: Run, zoo: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, _, err = edgeship("profile", zoo / "mlp.onnx", *QUICK, "--report", blocker / "sub")
    assert rc == 2
    assert err.strip().splitlines()[-1].startswith(f"error: --report {blocker / 'sub'}: cannot")
