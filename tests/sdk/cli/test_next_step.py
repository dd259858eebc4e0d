"""The ``next:`` line's advice, from the report it follows (the commands' own runs check
that they print it, and not with ``--json``: test_profile_report, compress's test_cli,
ab's test_local_ab)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from edgeship.ab.result import FASTER, NO_DIFFERENCE, SLOWER, ABReport, DeviceFailure
from edgeship.cli.next_step import after_ab, after_compress, after_profile, command
from tests.sdk.ab import fakes

BASE, INT8, SAME = Path("m/fp32.onnx"), Path("m/int8.onnx"), Path("m/same.onnx")


@pytest.fixture(scope="module")
def report() -> ABReport:
    """fp32 against int8 (faster, within the gates) and same (no difference), two devices."""
    return fakes.report(devices=2)


def _with_verdicts(report: ABReport, **verdicts: str) -> ABReport:
    changed = copy.deepcopy(report)
    for device in changed.devices:
        for c in device.comparisons:
            c.verdict = verdicts.get(c.variant, c.verdict)
    return changed


def test_a_command_is_quoted_and_names_a_remote_target() -> None:
    assert command("ab", Path("my model.onnx"), target="local") == "edgeship ab 'my model.onnx'"
    assert command("deploy", "x.onnx", target="pi") == "edgeship deploy x.onnx --target pi"


def test_after_profile_compress_one_model_or_compare_several() -> None:
    assert after_profile([BASE], "local") == (
        "edgeship compress m/fp32.onnx --method int8-dynamic --out m/fp32-int8.onnx, "
        "then edgeship ab m/fp32.onnx m/fp32-int8.onnx"
    )
    assert after_profile([BASE, INT8], "lab") == (
        "edgeship ab m/fp32.onnx m/int8.onnx --target lab (is the difference real?)"
    )


def test_after_compress_an_ab_against_the_base() -> None:
    assert after_compress(BASE, [INT8], "local") == "edgeship ab m/fp32.onnx m/int8.onnx"
    # a torch state dict is no model the runtime loads: profile what was made
    assert (
        after_compress(Path("net.pt"), [INT8], "pi") == "edgeship profile m/int8.onnx --target pi"
    )
    assert after_compress(BASE, [], "local") == "nothing was made: see the errors above"


def test_after_ab_deploy_the_variant_faster_everywhere_within_its_gates(report: ABReport) -> None:
    assert {c.verdict for d in report.devices for c in d.comparisons} == {FASTER, NO_DIFFERENCE}
    advice = after_ab(report, BASE, [INT8, SAME], "pi", sessions=10)
    assert advice == "deploy int8: edgeship deploy m/int8.onnx --target pi"


def test_after_ab_more_sessions_while_undecided(report: ABReport) -> None:
    undecided = _with_verdicts(report, int8=NO_DIFFERENCE)
    assert after_ab(undecided, BASE, [INT8, SAME], "local", sessions=10) == (
        "undecided for int8, same: run more sessions: "
        "edgeship ab m/fp32.onnx m/int8.onnx m/same.onnx --sessions 20"
    )
    # an A/A variant (the base itself) is not waited on: the noise is what it measures
    assert after_ab(undecided, BASE, [INT8, SAME], "local", 10, same=[SAME]).startswith(
        "undecided for int8: "
    )


def test_after_ab_keep_the_base_when_nothing_wins(report: ABReport) -> None:
    slower = _with_verdicts(report, int8=SLOWER, same=SLOWER)
    advice = after_ab(slower, BASE, [INT8, SAME], "local", sessions=10)
    assert advice.startswith("keep fp32.onnx: no variant is faster on every device")
    # faster, but a gate failed: not deployed either
    gated = copy.deepcopy(report)
    for gate in gated.gates:
        if gate.variant == "int8":
            gate.passed = False
    assert after_ab(gated, BASE, [INT8, SAME], "local", 10, same=[SAME]).startswith("keep ")


def test_after_ab_an_aa_run_or_a_failed_device(report: ABReport) -> None:
    aa = after_ab(report, BASE, [INT8, SAME], "local", 10, same=[INT8, SAME])
    assert aa == "an A/A run measures the noise; compare a variant: edgeship ab m/fp32.onnx VARIANT"
    failed = copy.deepcopy(report)
    failed.failures.append(DeviceFailure("pi-9", "ConnectError", "unreachable"))
    assert after_ab(failed, BASE, [INT8, SAME], "local", 10).startswith("fix the failed devices")


def test_after_ab_an_unstable_measurement_decides_nothing(report: ABReport) -> None:
    """The run's verdict says "not to be trusted": the advice does not deploy from it."""
    unstable = copy.deepcopy(report)
    unstable.devices[1].stable = False
    assert after_ab(unstable, BASE, [INT8, SAME], "lab", sessions=10) == (
        "the measurement was unstable on pi-1: remove its cause (the validity lines above), "
        "then run it again before deciding: "
        "edgeship ab m/fp32.onnx m/int8.onnx m/same.onnx --target lab"
    )


def test_after_ab_a_winner_whose_outputs_were_not_compared_says_so(report: ABReport) -> None:
    blind = copy.deepcopy(report)
    for device in blind.devices:
        for c in device.comparisons:
            c.agreement, c.accuracy_drop_pp = None, None
    assert after_ab(blind, BASE, [INT8, SAME], "pi", sessions=10) == (
        "deploy int8: edgeship deploy m/int8.onnx --target pi (its outputs were not compared "
        "with fp32.onnx's: run the A/B with --data FILE.npz first)"
    )
