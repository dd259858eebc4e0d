"""The reports' validity and per-op-type sections, and the inputs each model was fed: in
every view, through JSON (a 1.0 report, without them, still reads), and from a real A/B
on ``local``."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.ab import _report_html as report_html
from edgeship.ab import _report_md as report_md
from edgeship.ab._analyze import fed_inputs
from edgeship.ab.result import ABReport, ModelResult
from edgeship.ab.table import (
    input_text,
    inputs_heading,
    model_rows,
    ops_reconciliation,
    ops_rows,
    render,
    validity_rows,
)
from edgeship.cli.main import main as edgeship
from edgeship_runtime.opprofile import NOT_EXPOSED
from edgeship_runtime.report import TensorSummary
from edgeship_runtime.signature import Signature, TensorSpec
from tests.sdk.ab import fakes
from tests.sdk.ab.test_local_ab import FAST


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def html_cells(cells: list[str]) -> list[str]:
    return [f">{html.escape(c)}</td>" for c in cells]


def test_both_reports_hold_every_sessions_verdict_and_reasons(fake_report: ABReport) -> None:
    md, page = report_md.render(fake_report), report_html.render(fake_report)
    for device in fake_report.devices:
        name = device.target["name"]
        _, rows = validity_rows(device)
        assert len(rows) == fake_report.design.sessions
        last = device.validity[-1]
        assert last.verdict == "unstable" and last.reasons == [fakes.GOVERNOR]
        assert set(last.models) == {"fp32", "int8", "same"} and last.warmup_runs == 10
        assert last.after is not None and last.after.temperature_c == device.after.temperature_c
        assert (
            f"### Validity on {name}" in md
            and "validity: 9/10 sessions stable: the measurement is stable" in md
        )
        assert f'<h3 id="validity-{name}">' in page
        for row in rows:
            assert md_row(row) in md
            assert all(cell in page for cell in html_cells(row))
        assert rows[-1][1:3] == ["unstable", "fp32, int8, same"]
        assert rows[-1][-1] == fakes.GOVERNOR
    assert "Unchecked on this device: throttling (no thermal_throttle counters" in md
    assert "unchecked on this device: throttling" in page


def test_both_reports_hold_the_op_type_diff(fake_report: ABReport) -> None:
    md, page = report_md.render(fake_report), report_html.render(fake_report)
    device = fake_report.devices[0]
    int8 = next(d for d in device.op_diffs if d.variant == "int8")
    headers, rows = ops_rows(int8, "fp32")
    assert headers == ["op type", "fp32 ms", "fp32 %", "int8 ms", "int8 %", "Δ ms", "change"]
    by_type = {r[0]: r for r in rows}
    assert by_type["Conv"][-1] == "only in fp32" and by_type["ConvInteger"][-1] == "only in int8"
    assert by_type["Gemm"][-1] == "faster" and by_type["Gemm"][5] == "-0.8000"
    base_ops = device.models[0].ops
    assert base_ops is not None
    base_conv = next(t for t in base_ops.op_types if t.op_type == "Conv")
    assert by_type["Conv"][2] == f"{100 * base_conv.share:.1f}"
    heading = "Per op type, int8 against fp32 (operators 8.5000 → 4.5000 ms)"
    assert f"### {heading}" in md and f">{heading}</h3>" in page
    for row in rows:
        assert md_row(row) in md
        assert all(cell in page for cell in html_cells(row))


def test_every_view_reconciles_each_model_s_operators(fake_report: ABReport) -> None:
    device = fake_report.devices[0]
    lines = ops_reconciliation(device)
    assert [line.split(":")[0] for line in lines] == [m.name for m in device.models]
    fp32 = device.models[0].ops
    assert fp32 is not None and fp32.ops_ms is not None and fp32.plain_ms is not None
    total = fp32.ops_ms + fakes.OUTSIDE_OPS_MS
    assert lines[0] == (
        f"fp32: operators {fp32.ops_ms:.4f} + outside them {fakes.OUTSIDE_OPS_MS:.4f} = "
        f"{total:.4f} ms end-to-end with the profiler; {fp32.plain_ms:.4f} ms without: "
        f"profiler overhead +{100 * fakes.PROFILER_OVERHEAD:.1f} % (within 10 %) "
        "(means of the middle 20 of 40 runs)"
    )
    md, page, text = (
        report_md.render(fake_report),
        report_html.render(fake_report),
        render(fake_report),
    )
    for line in lines:
        assert f"- {line}" in md and f"<li>{html.escape(line)}</li>" in page
        assert f"  {line}" in text
    _, rows = ops_rows(device.op_diffs[0], "fp32")
    assert rows[-1][:2] == ["all operators", f"{fp32.ops_ms:.4f}"]
    assert sum(float(r[1]) for r in rows[:-1]) == pytest.approx(fp32.ops_ms, abs=1e-3)


def test_a_backend_without_per_op_times_says_so_in_the_reports(fake_report: ABReport) -> None:
    report = ABReport.from_json(fake_report.to_json())
    diff = report.devices[0].op_diffs[0]
    diff.rows, diff.note = [], "per-op timing: not exposed by LiteRT"
    md, page = report_md.render(report), report_html.render(report)
    assert "### Per op type, int8 against fp32: per-op timing: not exposed by LiteRT" in md
    assert ">Per op type, int8 against fp32: per-op timing: not exposed by LiteRT</h3>" in page


def test_every_view_shows_the_inputs_fed(fake_report: ABReport) -> None:
    device = fake_report.devices[0]
    headers, rows = model_rows(device)
    shape = "×".join(map(str, fakes.SHAPE))
    assert headers[:3] == ["model", "role", "inputs"]
    assert {r[2] for r in rows} == {f"x: {shape} float32"}
    heading = f"inputs x: {shape} float32"
    assert inputs_heading(device) == heading
    for view in (render(fake_report), report_md.render(fake_report)):
        assert heading in view and f"x: {shape} float32" in view
    assert html.escape(heading) in report_html.render(fake_report)


def test_inputs_that_differ_are_shown_per_model(fake_report: ABReport) -> None:
    fp32, int8, _ = fake_report.devices[0].models
    device = dataclasses.replace(
        fake_report.devices[0],
        models=[
            _fed(fp32, TensorSummary("x", [1, 3, 224, 224], "float32")),
            _fed(int8, TensorSummary("x", [1, 3, 224, 224], "uint8")),
        ],
    )
    expected = "inputs fp32 x: 1×3×224×224 float32; int8 x: 1×3×224×224 uint8"
    assert inputs_heading(device) == expected
    assert input_text(TensorSummary("step", [], "int64")) == "step: scalar int64"


def _fed(model: ModelResult, *inputs: TensorSummary) -> ModelResult:
    return dataclasses.replace(model, inputs=list(inputs))


def test_inputs_and_validity_round_trip_through_json(fake_report: ABReport) -> None:
    again = ABReport.from_json(fake_report.to_json())
    assert again.devices[0].models[0].inputs == fake_report.devices[0].models[0].inputs
    assert isinstance(again.devices[0].models[0].inputs[0], TensorSummary)
    assert again.devices[0].validity == fake_report.devices[0].validity
    assert again.devices[0].op_diffs == fake_report.devices[0].op_diffs


def test_both_reports_show_each_sessions_governor_throttling_preemptions_and_wait(
    fake_report: ABReport,
) -> None:
    md, page = report_md.render(fake_report), report_html.render(fake_report)
    headers, rows = validity_rows(fake_report.devices[0])
    cells = slice(headers.index("governor"), headers.index("waited for a CPU") + 1)
    assert rows[0][cells] == [
        "performance",
        "events +1, Pi 0x0 → 0x0",
        "1000 → 1040 (+40)",
        "0.010 s (0.5 %)",
    ]
    assert rows[-1][cells] == [
        "performance → powersave",
        "events +1, Pi 0x0 → 0x50000",
        "1720 → 1760 (+40)",
        "0.010 s (0.5 %)",
    ]
    for row in rows:
        assert md_row(row) in md
        assert all(cell in page for cell in html_cells(row))


def test_a_report_without_device_states_reads_and_shows_dashes(fake_report: ABReport) -> None:
    """A 1.1 file written before the sessions carried the device's state."""
    data = fake_report.to_dict()
    for device in data["devices"]:
        for conditions in (device["before"], device["after"]):
            del conditions["device"]
        for session in device["validity"]:
            del session["before"]["device"], session["after"]["device"]
    old = ABReport.from_dict(json.loads(json.dumps(data)))
    headers, rows = validity_rows(old.devices[0])
    cells = slice(headers.index("governor"), headers.index("waited for a CPU") + 1)
    assert all(row[cells] == ["-", "-", "-", "-"] for row in rows)
    assert "### Validity on pi-0" in report_md.render(old)


def test_a_1_0_report_still_reads_and_renders(fake_report: ABReport) -> None:
    """What 1.0 wrote: no inputs, sessions without models/warm-up/conditions, op rows
    without shares and node counts."""
    data = fake_report.to_dict()
    data["schema"] = "edgeship.ab/1"
    for device in data["devices"]:
        for model in device["models"]:
            del model["inputs"]
        for session in device["validity"]:
            for key in ("models", "warmup_runs", "before", "after"):
                del session[key]
        for diff in device["op_diffs"]:
            for row in diff["rows"]:
                for key in ("base_share", "variant_share", "base_nodes", "variant_nodes"):
                    del row[key]
    old = ABReport.from_dict(json.loads(json.dumps(data)))
    device = old.devices[0]
    assert device.models[0].inputs == [] and device.validity[-1].warmup_runs is None
    assert model_rows(device)[1][0][2] == "-" and inputs_heading(device) == "inputs -"
    assert validity_rows(device)[1][-1][1:6] == ["unstable", "-", "-", "-", "-"]
    gemm = next(r for r in ops_rows(device.op_diffs[0], "fp32")[1] if r[0] == "Gemm")
    assert gemm[2] == gemm[4] == "-" and gemm[-1] == "faster"
    assert "### Validity on pi-0" in report_md.render(old)
    assert 'id="validity-table-pi-0"' in report_html.render(old)


def test_fed_inputs_name_an_array_fed_by_position() -> None:
    signature = Signature(
        (TensorSpec("serving_default_x:0", (1, 4), "float32"),),
        (TensorSpec("y", (1,), "float32"),),
    )
    fed = fed_inputs({"": np.zeros((2, 4), np.float32)}, signature)
    assert fed == [TensorSummary("serving_default_x:0", [2, 4], "float32")]
    named = fed_inputs({"a": np.zeros(3, np.int64), "b": np.zeros((), np.bool_)}, signature)
    assert [(t.name, t.shape, t.dtype) for t in named] == [("a", [3], "int64"), ("b", [], "bool")]


def test_a_real_ab_with_ops_shows_inputs_validity_and_op_diff(
    zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = zoo / "digits_test.npz"
    argv = ["ab", str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), *FAST, "--no-memory", "--ops"]
    argv += ["--data", str(data), "--report", str(tmp_path)]
    assert edgeship(argv) == 0
    table = capsys.readouterr().out
    report = ABReport.from_json((tmp_path / "ab.json").read_text())
    [device] = report.devices
    # generated from one sample of --data: batch 1, the data's dims and dtype
    sample = np.load(data)["input"]
    fed = TensorSummary("input", [1, *sample.shape[1:]], sample.dtype.name)
    assert [m.inputs for m in device.models] == [[fed], [fed]]
    shown = input_text(fed)
    assert shown == "input: 1×1×8×8 float32"
    assert f"inputs {shown}" in table.splitlines()[0]
    md, page = (tmp_path / "ab.md").read_text(), (tmp_path / "ab.html").read_text()
    assert f"inputs {shown}" in md and html.escape(f"inputs {shown}") in page
    assert len(device.validity) == report.design.sessions
    assert all(v.warmup_runs == report.design.warmup for v in device.validity)
    assert all(set(v.models) == {"cnn", "mlp"} for v in device.validity)
    for row in validity_rows(device)[1]:
        assert md_row(row) in md
    [diff] = device.op_diffs
    assert diff.rows and diff.base_ops_ms and diff.variant_ops_ms
    assert sum(r.base_share or 0.0 for r in diff.rows) == pytest.approx(1.0)
    assert "per op type, mlp against cnn (operators" in table
    for row in ops_rows(diff, "cnn")[1]:
        assert md_row(row) in md
        assert all(cell in page for cell in html_cells(row))
    assert "Conv" in {r.op_type for r in diff.rows}
    # one computation: the op types sum to the operators' total, shown with each
    # model's reconciliation against its end-to-end time without the profiler
    assert sum(r.base_ms for r in diff.rows) == pytest.approx(diff.base_ops_ms, rel=0.02)
    assert sum(r.variant_ms for r in diff.rows) == pytest.approx(diff.variant_ops_ms, rel=0.02)
    for line in ops_reconciliation(device):
        assert f"  {line}" in table and f"- {line}" in md and html.escape(line) in page
    # the device's state around each window, from the runtime, through ab.json
    for v in device.validity:
        assert v.before is not None and v.after is not None
        assert v.before.device is not None and v.after.device is not None
        assert v.after.device.preemptions is not None  # getrusage: readable on any Linux
        assert v.after.device.preemptions >= (v.before.device.preemptions or 0)


def test_a_real_ab_says_litert_gives_no_per_op_times(
    zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ab", str(zoo / "mlp.onnx"), str(zoo / "mlp.tflite"), *FAST, "--no-memory", "--ops"]
    assert edgeship([*argv, "--report", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    md, page = (tmp_path / "ab.md").read_text(), (tmp_path / "ab.html").read_text()
    note = NOT_EXPOSED["tflite"]
    [device] = ABReport.from_json((tmp_path / "ab.json").read_text()).devices
    [diff] = device.op_diffs
    assert diff.rows == [] and diff.note == note
    tflite = device.models[1]
    assert tflite.ops is not None and not tflite.ops.available and tflite.ops.nodes == []
    assert f"  {tflite.name}: {note}" in table and f"- {tflite.name}: {note}" in md
    assert html.escape(note) in page
