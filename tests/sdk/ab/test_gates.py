"""Gates: made by name from one registry, validated once, checked with margins."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.ab.gates import (
    GATES,
    MaxAccuracyDrop,
    MaxMemoryRatio,
    MinAgreement,
    MinSpeedup,
    check_all,
    make_gate,
    parse_gate,
)
from edgeship.ab.result import Agreement, Comparison, Interval
from edgeship.ab.runner import ABConfig
from edgeship.core.errors import UsageError
from tests.sdk.ab import fakes


def comparison(**changes: object) -> Comparison:
    c = Comparison(
        variant="int8",
        latency_ratio=0.5,
        latency_ratio_ci=Interval(0.45, 0.55),
        speedup=2.0,
        speedup_ci=Interval(1.8, 2.2),
        p_value=0.001,
        prob_slower=0.0,
        verdict="faster",
        size_ratio=0.25,
        memory_ratio=1.05,
        accuracy_drop_pp=0.8,
        agreement=Agreement(0.985, Interval(0.97, 0.99), 0.2, 0.999, 0.98, 200),
    )
    for key, value in changes.items():
        setattr(c, key, value)
    return c


def test_registry_names_every_gate_once() -> None:
    assert list(GATES) == [
        "min-speedup",
        "max-accuracy-drop",
        "max-memory-ratio",
        "max-size-ratio",
        "min-agreement",
    ]


def test_make_and_parse() -> None:
    assert make_gate("min-speedup", "1.3") == MinSpeedup(1.3)
    assert make_gate("max_accuracy_drop", 0.5) == MaxAccuracyDrop(0.5)
    assert parse_gate("max-memory-ratio=1.0") == MaxMemoryRatio(1.0)
    assert parse_gate(" min-agreement = 99 ") == MinAgreement(99.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-speed=2", "unknown gate 'max-speed' \\(known: min-speedup, max-accuracy-drop"),
        ("min-speedup", "expected NAME=VALUE"),
        ("=1", "expected NAME=VALUE"),
        ("min-speedup=fast", "'fast' is not a number"),
        ("min-speedup=0", "must be a ratio above 0"),
        ("min-speedup=nan", "must be a ratio above 0"),
        ("max-accuracy-drop=-1", "not a percentage"),
        ("min-agreement=101", "not a percentage"),
    ],
)
def test_bad_gates_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_gate(text)


def test_gates_are_frozen() -> None:
    gate = MinSpeedup(1.3)
    with pytest.raises(AttributeError):
        gate.value = 2.0  # type: ignore[misc]


def test_check_reports_margin_in_the_gates_unit() -> None:
    ok = MinSpeedup(1.3).check(comparison(), "pi")
    assert ok.passed and ok.margin == pytest.approx(0.7) and ok.observed == 2.0
    assert ok.unit == "x" and "ok" in ok.message
    bad = MaxAccuracyDrop(0.5).check(comparison(), "pi")
    assert not bad.passed and bad.margin == pytest.approx(-0.3) and bad.unit == "pp"
    assert "FAILED by 0.3 pp" in bad.message
    memory = MaxMemoryRatio(1.0).check(comparison(), "pi")
    assert not memory.passed and memory.margin == pytest.approx(-0.05)
    agree = MinAgreement(99).check(comparison(), "pi")
    assert not agree.passed and agree.observed == pytest.approx(98.5)
    assert MinSpeedup(2.0).check(comparison(), "pi").passed  # the boundary passes


def test_a_figure_that_was_not_measured_fails_its_gate() -> None:
    result = MaxMemoryRatio(1.0).check(comparison(memory_ratio=None), "pi")
    assert not result.passed and result.observed is None and "not measured" in result.message


def test_check_all_covers_every_variant_on_every_device() -> None:
    report = fakes.report(devices=2, gates=False)
    results = check_all([MinSpeedup(1.3), MaxMemoryRatio(0.9)], report.devices)
    assert [(r.target, r.variant, r.gate) for r in results] == [
        (device, variant, gate)
        for device in ("pi-0", "pi-1")
        for variant in ("int8", "same")
        for gate in ("min-speedup", "max-memory-ratio")
    ]
    passed = {(r.target, r.variant, r.gate): r.passed for r in results}
    assert passed[("pi-0", "int8", "min-speedup")] and not passed[("pi-0", "same", "min-speedup")]


def test_quality_gates_need_data() -> None:
    with pytest.raises(UsageError, match="max-accuracy-drop needs a data set with labels"):
        ABConfig(gates=(MaxAccuracyDrop(0.5),))
    with pytest.raises(UsageError, match="min-agreement needs a data set: pass --data"):
        ABConfig(gates=(MinAgreement(99),))
    ABConfig(gates=(MinAgreement(99),), data=(Path("d.npz"),))
