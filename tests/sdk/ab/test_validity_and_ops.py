"""A/B with several variants (Holm, the minimum detectable effect), the verdict per session
and the per-op-type diff, on synthetic measurements."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeship.ab._analyze import (
    ModelRun,
    analyze,
    caveat,
    measurement_stable,
    ops_comparison,
    paired_validity,
    session_validity,
)
from edgeship.ab._report_md import render as render_md
from edgeship.ab.gates import make_gate
from edgeship.ab.result import ABReport
from edgeship.ab.runner import ABConfig
from edgeship.ab.schedule import Schedule
from edgeship.ab.stats import (
    StatsPolicy,
    holm,
    min_attainable_p,
    min_detectable_change,
    signed_rank,
)
from edgeship.ab.table import render, validity_lines
from edgeship_runtime.report import OpProfile, OpTypeTime, Validity
from tests.sdk.ab import fakes


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2]
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_the_smallest_p_of_an_exact_test() -> None:
    assert min_attainable_p(6) == pytest.approx(2 / 64)
    assert min_attainable_p(10) < 0.002


def test_too_few_sessions_can_detect_nothing() -> None:
    base = [1.0, 1.01, 0.99, 1.02, 1.0, 0.98]
    variant = [1.01, 1.0, 1.0, 1.01, 0.99, 0.99]
    assert min_detectable_change(base, variant, alpha=0.05) is not None  # 2/64 < 0.05
    assert min_detectable_change(base, variant, alpha=0.05 / 2) is None  # Holm over 2 variants


def test_the_detectable_change_is_detected_four_times_in_five() -> None:
    """Shift the variant by the reported change: the test rejects with about 80 % power."""
    rng = np.random.default_rng(1)
    sessions, sd, reps = 10, 0.02, 400
    z = rng.standard_normal(sessions)
    ratios = np.exp(sd * (z - z.mean()) / z.std(ddof=1))  # log ratios with sd exactly `sd`
    change = min_detectable_change(np.ones(sessions), ratios, alpha=0.05)
    assert change is not None and 0.01 < change < 0.06
    hits = 0
    for _ in range(reps):
        b = np.exp(rng.normal(0, 0.05, sessions))  # the sessions' own level cancels out
        v = b * np.exp(rng.normal(math.log1p(change), sd, sessions))
        hits += signed_rank(b, v).p_value < 0.05
    assert 0.7 < hits / reps < 0.9


def test_several_variants_are_holm_corrected() -> None:
    report = fakes.report(gates=False)
    comparisons = report.devices[0].comparisons
    assert len(comparisons) == 2
    adjusted = holm([c.p_value for c in comparisons])
    assert [c.p_value_holm for c in comparisons] == pytest.approx(adjusted)
    int8, same = comparisons
    assert int8.verdict == "faster" and same.verdict == "no significant difference"
    assert int8.min_detectable_change is not None and int8.min_detectable_change < 0.2


def test_a_borderline_p_is_no_longer_significant_after_correction() -> None:
    rng = np.random.default_rng(3)
    base = fakes.latencies(rng, 10.0, sessions=6, runs=10)
    runs = [
        fakes.model_run("base", base, "base"),
        fakes.model_run("a", base * 0.5),  # every session on one side: p = 2/64
        fakes.model_run("b", base * 0.5),
    ]
    device = analyze(fakes.device_run("d", runs, block=10, sessions=6), StatsPolicy())
    a, _ = device.comparisons
    assert a.p_value == pytest.approx(2 / 64)
    assert a.p_value_holm == pytest.approx(4 / 64)
    assert a.verdict == "no significant difference" and a.min_detectable_change is None
    text = render(_report(device))
    assert "detectable 'none'" in text and "give more --sessions" in text


def _report(device: object) -> ABReport:
    report = fakes.report(gates=False)
    report.devices = [device]  # type: ignore[list-item]
    return report


def validity(verdict: str, *reasons: str) -> Validity:
    causes = ["noise" for _ in reasons]
    return Validity(verdict, list(reasons), causes, unchecked=["CPU governor (x)"])


def test_a_session_verdict_names_the_model_a_reason_is_about() -> None:
    shared = "CPU governor is 'powersave', not 'performance' (the clock follows the load)"
    seen = session_validity(
        2,
        ["fp32", "int8"],
        [
            validity("unstable", shared, "std 1 ms is 20 % of the mean"),
            validity("unstable", shared),
        ],
    )
    assert seen.verdict == "unstable"
    assert seen.reasons == [shared, "fp32: std 1 ms is 20 % of the mean"]
    calm = session_validity(0, ["a", "b"], [validity("stable"), validity("stable")])
    assert (calm.verdict, calm.reasons) == ("stable", [])


def test_sessions_verdicts_reach_the_report_and_its_views() -> None:
    rng = np.random.default_rng(0)
    base = fakes.latencies(rng, 10.0)
    base[3, ::3] *= 2.0  # in session 4 the base alone had slow runs: its ratio shows them
    runs = [fakes.model_run("fp32", base, "base"),
            fakes.model_run("int8", fakes.latencies(rng, 5.0))]  # fmt: skip
    device_run = fakes.device_run("pi", runs)
    device_run.validity = [[validity("stable"), validity("stable")] for _ in range(10)]
    device_run.validity[3] = [validity("unstable", "max 9 ms is 80 % above the mean"), None]
    device = analyze(device_run, StatsPolicy())
    assert [v.verdict for v in device.validity].count("unstable") == 1
    assert device.unchecked == ["CPU governor (x)"]
    report = _report(device)
    text = render(report)
    assert "validity: 9/10 sessions stable: the measurement is stable" in text
    assert "fp32: unstable in 1/10 sessions: the runs' times spread or moved → close" in text
    assert "session 4" not in text  # one line per model, not per session
    markdown = render_md(report)
    assert "validity: 9/10 sessions stable" in markdown
    assert "fp32: max 9 ms is 80 % above the mean" in markdown  # every reason in the table
    again = ABReport.from_json(report.to_json())
    assert again.devices[0].validity == device.validity


def _drifting(rng: np.random.Generator, alone: bool) -> list[ModelRun]:
    """Two models whose times rise 40 % over every session, both alike or the base alone."""
    ramp = np.linspace(1.0, 1.4, 60)
    base = fakes.latencies(rng, 10.0, runs=60, noise_sd=0.01) * ramp
    variant = fakes.latencies(rng, 5.0, runs=60, noise_sd=0.01) * (1.0 if alone else ramp)
    return [fakes.model_run("fp32", base, "base"), fakes.model_run("int8", variant)]


def test_noise_every_model_shares_is_drift_the_paired_ratio_cancels() -> None:
    """A quiet machine's speed wanders: the runtime calls each model's window noisy, but
    the comparison rests on their paired ratio, which held: stable, the drift noted."""
    shift = "the mean moved +20 % between the window's halves (10 → 12 ms; limit 15 %)"
    device_run = fakes.device_run("pi", _drifting(np.random.default_rng(1), alone=False))
    device_run.validity = [[validity("unstable", shift)] * 2 for _ in range(10)]
    (fp32, int8) = paired_validity(device_run)[0]
    assert fp32 is not None and int8 is not None
    assert (fp32.verdict, fp32.causes) == ("stable", ["drift"])
    assert fp32.reasons == [f"drift: {shift}; every model alike: the paired ratio held"]
    device = analyze(device_run, StatsPolicy())
    assert device.stable and all(v.verdict == "stable" for v in device.validity)
    assert any("drift: " in r for r in device.validity[0].reasons)  # said, not hidden


def test_noise_in_one_model_only_stays_and_other_causes_are_never_drift() -> None:
    shift = "the mean moved +20 % between the window's halves (10 → 12 ms; limit 15 %)"
    device_run = fakes.device_run("pi", _drifting(np.random.default_rng(2), alone=True))
    contended = Validity("unstable", ["waited 30 %"], ["contention"])
    device_run.validity = [[validity("unstable", shift), contended] for _ in range(10)]
    (fp32, int8) = paired_validity(device_run)[0]
    assert fp32 == device_run.validity[0][0] and int8 == contended
    assert not analyze(device_run, StatsPolicy()).stable


def op_profile(**totals: float) -> OpProfile:
    return OpProfile(
        available=True,
        backend="onnxruntime",
        ops_ms=sum(totals.values()),
        op_types=[OpTypeTime(name, 1, ms, 0.0) for name, ms in totals.items()],
    )


def test_the_op_type_diff_explains_a_slower_int8_model() -> None:
    rng = np.random.default_rng(0)
    base = fakes.model_run("fp32", fakes.latencies(rng, 1.0), "base")
    int8 = fakes.model_run("int8", fakes.latencies(rng, 6.0))
    base.ops = op_profile(Conv=0.8, Gemm=0.1)
    int8.ops = op_profile(ConvInteger=5.0, DynamicQuantizeLinear=0.6, MatMulInteger=0.2)
    device = analyze(fakes.device_run("pi", [base, int8]), StatsPolicy())
    (diff,) = device.op_diffs
    assert [r.op_type for r in diff.rows][:2] == ["ConvInteger", "Conv"]
    assert diff.rows[0].delta_ms == pytest.approx(5.0)
    text = render(_report(device))
    assert "per op type, int8 against fp32 (operators 0.9000 → 5.8000 ms):" in text
    assert "ConvInteger" in text and "+5.0000" in text


def test_no_per_op_times_is_said_in_the_diff() -> None:
    base = fakes.model_run("a", np.ones((10, 30)), "base")
    other = fakes.model_run("b", np.ones((10, 30)))
    base.ops = op_profile(Conv=1.0)
    other.ops = OpProfile(available=False, backend="tflite", note="per-op timing: not exposed")
    result = ops_comparison(
        analyze(fakes.device_run("d", [base, other]), StatsPolicy()).models[0],
        analyze(fakes.device_run("d", [base, other]), StatsPolicy()).models[1],
    )
    assert result.rows == [] and result.note == "per-op timing: not exposed"


def test_a_pass_over_an_unstable_measurement_says_so_in_every_view_and_the_json() -> None:
    config = ABConfig(schedule=Schedule(sessions=10), gates=(make_gate("max-size-ratio", 1.0),))
    report = fakes.report(config=config)  # the last of 10 sessions unstable: tolerated
    assert report.passed and report.stable is True and report.caveat is None
    assert render(report).splitlines()[-1] == "PASS: 2/2 gate checks passed"
    for device in report.devices:  # a hog through 3 of its 10 sessions
        for session in device.validity[:3]:
            session.verdict = "unstable"
        device.stable = measurement_stable(device.validity)
    report.stable, report.caveat = False, caveat(report.devices)
    line = (
        "PASS: 2/2 gate checks passed, but the measurement was UNSTABLE on pi-0 "
        "(4/10 sessions): not to be trusted"
    )
    assert render(report).splitlines()[-1] == line
    assert line.split(": ", 1)[1] in render_md(report)
    again = ABReport.from_json(report.to_json())
    assert (again.passed, again.stable, again.caveat) == (True, False, report.caveat)


def test_one_line_per_unstable_model_with_the_cause_and_the_remedy() -> None:
    """Every model of the fake device is unstable in its last session, for the same
    reason (the governor): one line for the three."""
    report = fakes.report(gates=False)
    (device,) = report.devices
    lines = [line.strip() for line in validity_lines(device)]
    assert lines[0].startswith("validity: 9/10 sessions stable: the measurement is stable")
    governor = "the CPU clock follows the load (governor not 'performance') → set the governor"
    assert lines[1].startswith("fp32, int8, same: unstable in 1/10 sessions: " + governor)
    assert len(lines) == 3 and lines[2].startswith("unchecked on this device: ")
