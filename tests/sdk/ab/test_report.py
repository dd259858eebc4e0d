"""The typed report: JSON round trip, schema, pooled results, and its views."""

from __future__ import annotations

import json

import pytest

from edgeship.ab.reports import ReportFiles
from edgeship.ab.result import AB_SCHEMA, FASTER, NO_DIFFERENCE, ABReport
from edgeship.ab.table import render
from edgeship.core.errors import ProtocolError
from tests.sdk.ab import fakes


@pytest.fixture
def report(fake_report: ABReport) -> ABReport:
    return fake_report


def test_json_round_trip(report: ABReport) -> None:
    text = report.to_json()
    again = ABReport.from_json(text)
    assert again == report
    data = json.loads(text)
    assert data["schema"] == AB_SCHEMA == "edgeship.ab/1.2"
    assert data["devices"][0]["models"][0]["latency"]["p50_ms"] > 0
    assert data["devices"][0]["environment"]["cpu_model"] == "Cortex-A76"


def test_schema_is_checked() -> None:
    data = fakes.report().to_dict()
    data["schema"] = "edgeship.report/1"
    with pytest.raises(ProtocolError, match="unsupported schema"):
        ABReport.from_dict(data)
    data["schema"] = "edgeship.ab/1.3"  # a newer minor revision stays readable
    assert ABReport.from_dict(data).base == "fp32"
    data["schema"] = "edgeship.ab/2"
    with pytest.raises(ProtocolError, match=r"unsupported schema 'edgeship\.ab/2'"):
        ABReport.from_dict(data)


def test_analysis_of_the_synthetic_fleet(report: ABReport) -> None:
    assert report.base == "fp32" and report.variants == ["int8", "same"]
    for device in report.devices:
        int8, same = device.comparisons
        assert int8.verdict == FASTER and int8.speedup_ci.low > 1.8
        assert same.verdict == NO_DIFFERENCE and same.latency_ratio_ci.contains(1.0)
        assert int8.size_ratio == 0.25 and int8.memory_ratio == pytest.approx(100 / 120)
        assert same.accuracy_drop_pp == 0.0 and same.agreement and same.agreement.top1 == 1.0
        assert int8.agreement is not None and int8.agreement.max_abs_diff > 0
        assert "int8" in device.pareto_front
        assert device.models[0].accuracy is not None
        assert len(device.models[0].session_medians_ms) == 10
    pooled = {p.variant: p for p in report.pooled}
    assert pooled["int8"].verdict == FASTER and pooled["int8"].devices == ["pi-0", "pi-1"]
    assert pooled["int8"].speedup == pytest.approx(2.0, rel=0.05)
    assert pooled["same"].verdict == NO_DIFFERENCE


def test_gates_in_the_report(report: ABReport) -> None:
    failed = {(g.target, g.variant, g.gate) for g in report.failed_gates()}
    assert failed == {
        (device, "same", gate)
        for device in ("pi-0", "pi-1")
        for gate in ("min-speedup", "max-memory-ratio")
    }
    assert len(report.gates) == 8 and not report.passed


def test_table_view(report: ABReport) -> None:
    text = render(report)
    assert (
        "pi-0: pi-0 · aarch64 · Cortex-A76; 10 sessions, each at least 0.5 s per model in "
        "blocks of 10 (30 runs per model and session)"
    ) in text
    assert "45.0 → 52.5 °C, 1800 → 1500 MHz" in text
    assert "int8" in text and "faster" in text and "no significant difference" in text
    assert "pooled over devices:" in text
    assert "FAIL:" in text.splitlines()[-1]


def test_write_report(report: ABReport, report_files: ReportFiles) -> None:
    files = report_files
    assert ABReport.from_json(files.json.read_text()) == report
    md = files.markdown.read_text()
    assert md.startswith("# A/B: fp32 against int8, same")
    assert "| variant | speedup [CI] |" in md and "## Pooled over devices" in md
    for figure in files.figures:
        assert figure.read_bytes().startswith(b"\x89PNG") and f"figures/{figure.name}" in md
    assert len(files.figures) == 1 + 3 * 2
    html = files.html.read_text()
    assert html.count('src="data:image/png;base64,') == len(files.figures)
    assert "http://" not in html and "https://" not in html
