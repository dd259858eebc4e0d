"""Fixtures of the A/B tests: a synthetic two-device report (and its files)."""

from __future__ import annotations

import pytest

from edgeship.ab.reports import ReportFiles, write_report
from edgeship.ab.result import ABReport
from tests.sdk.ab import fakes


@pytest.fixture(scope="session")
def fake_report() -> ABReport:
    """fp32 against int8 (2x faster, smaller) and same (identical) on two fake devices."""
    return fakes.report(devices=2)


@pytest.fixture(scope="session")
def report_files(fake_report: ABReport, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return write_report(fake_report, tmp_path_factory.mktemp("ab-report"))
