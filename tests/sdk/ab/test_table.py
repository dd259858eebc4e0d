"""The views' verdict line and units: "no gates set" rather than "PASS: 0/0", MiB columns,
accuracy against labels and agreement against the base, each with n and its interval."""

from __future__ import annotations

import dataclasses

from edgeship.ab import _report_html as report_html
from edgeship.ab import _report_md as report_md
from edgeship.ab.result import ABReport, DeviceFailure
from edgeship.ab.table import comparison_rows, front_line, model_rows, render, verdict
from edgeship.models.estimate import share_text
from tests.sdk.ab import fakes


def test_no_gates_set_is_said_so_in_every_view() -> None:
    report = fakes.report(gates=False)
    assert report.passed and not report.gates
    assert verdict(report) == (None, "no gates set")
    assert render(report).splitlines()[-1] == "no gates set"
    assert "0/0" not in render(report)
    assert report_md.summary_line(report) == "No gates set."
    assert report_html.summary(report) == "<p>No gates set.</p>"


def test_gates_give_pass_or_fail_with_the_count(fake_report: ABReport) -> None:
    assert verdict(fake_report) == ("FAIL", "4/8 gate checks passed")
    assert render(fake_report).splitlines()[-1] == "FAIL: 4/8 gate checks passed"
    assert report_md.summary_line(fake_report) == "**FAIL**: 4/8 gate checks passed"
    assert '<span class="fail">FAIL</span>: 4/8 gate checks passed' in report_html.summary(
        fake_report
    )


def test_a_failed_device_without_gates_is_a_fail() -> None:
    failure = DeviceFailure("pi-9", "ConnectError", "pi-9: cannot connect")
    report = dataclasses.replace(fakes.report(gates=False), failures=[failure], passed=False)
    assert verdict(report) == ("FAIL", "no gates set, 1 device(s) failed")
    assert render(report).splitlines()[-1] == "FAIL: no gates set, 1 device(s) failed"


def test_memory_columns_say_mib(fake_report: ABReport) -> None:
    headers, _ = model_rows(fake_report.devices[0])
    assert "peak RSS MiB" in headers and "load Δ MiB" in headers
    assert not any(h.endswith(" MB") for h in headers)


def test_accuracy_is_against_labels_and_agreement_against_the_base_with_n_and_interval(
    fake_report: ABReport,
) -> None:
    device = fake_report.devices[0]
    headers, rows = model_rows(device)
    base = device.models[0]
    assert base.accuracy is not None
    column = headers.index("accuracy (vs labels)")
    assert rows[0][column] == share_text(base.accuracy.accuracy, base.accuracy.n, base.accuracy.ci)
    assert rows[0][column].endswith(f"] n={base.accuracy.n}")
    headers, rows = comparison_rows(device)
    agreement = device.comparisons[0].agreement
    assert agreement is not None
    column = headers.index("agreement (vs base)")
    assert rows[0][column] == share_text(agreement.top1, agreement.n, agreement.top1_ci)
    assert not any("accuracy" in h and "labels" not in h and "drop" not in h for h in headers)


def test_the_front_names_only_the_objectives_it_was_taken_over() -> None:
    labelled = fakes.report(gates=False)
    assert front_line(labelled.devices[0]).startswith(
        "Pareto front (latency, size, memory, accuracy vs labels): "
    )
    unlabelled = fakes.report(gates=False, labelled=False)
    line = front_line(unlabelled.devices[0])
    assert line.startswith("Pareto front (latency, size, memory): ")
    assert line in render(unlabelled) and "accuracy" not in line
