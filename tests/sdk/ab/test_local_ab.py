"""``edgeship ab`` end to end on ``local`` (the runtime in a subprocess), and bad input.

The zoo's MLP is about 8x faster than its CNN at batch 1 and a little less accurate, so
one run exercises a clear verdict, quality, memory, gates that pass and one that fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeship.ab.result import FASTER, ABReport
from edgeship.cli.main import main as edgeship

FAST = ("--threads", "1", "--sessions", "6", "--block", "5", "--runs", "40", "--warmup", "5",
        "--min-seconds", "0")  # fmt: skip
"""Sessions of a fixed count: 2 rounds of 5 runs per model each, 60 runs in all."""


def test_ab_on_local_with_data_gates_json_and_report(
    zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ab", str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), *FAST, "--json"]
    argv += ["--data", str(zoo / "digits_test.npz"), "--report", str(tmp_path / "report")]
    argv += ["--min-speedup", "1.3", "--gate", "max-accuracy-drop=0.1"]
    status = edgeship(argv)
    out, err = capsys.readouterr()
    report = ABReport.from_json(out)
    assert status == 1  # the accuracy gate fails
    [device] = report.devices
    assert device.target["name"] == "local" and device.environment is not None
    cnn, mlp = device.models
    assert (cnn.name, cnn.role, mlp.role) == ("cnn", "base", "variant")
    assert cnn.latency.n == mlp.latency.n == 60 == len(cnn.samples_ms)
    assert cnn.session_runs == mlp.session_runs == [10] * 6
    assert cnn.memory and cnn.memory.peak_rss_mb > cnn.memory.load_delta_mb > 0
    assert cnn.accuracy and cnn.accuracy.n == 360 and cnn.accuracy.accuracy > 0.95
    assert cnn.size_bytes == (zoo / "cnn.onnx").stat().st_size
    [c] = device.comparisons
    assert c.verdict == FASTER and c.speedup_ci.low > 1.3 and c.latency_ratio_ci.high < 1
    assert c.agreement is not None and 0.9 < c.agreement.top1 < 1.0
    assert c.accuracy_drop_pp is not None and c.accuracy_drop_pp > 0.1
    assert len(device.rounds) == 12 and all(sorted(r) == ["cnn", "mlp"] for r in device.rounds)
    speed, accuracy = report.gates
    assert speed.passed and speed.margin is not None and speed.margin > 0
    assert not accuracy.passed and accuracy.margin == pytest.approx(0.1 - c.accuracy_drop_pp)
    assert f"gate failed: max-accuracy-drop: mlp on local: {c.accuracy_drop_pp:.4g} pp" in err
    assert "Traceback" not in err and "next:" not in out + err  # not with --json
    html = (tmp_path / "report" / "ab.html").read_text()
    assert html.count("data:image/png;base64,") == 4


def test_every_session_times_every_model_for_min_seconds(
    zoo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The time budget on real models: each session's runs of each model add up to at
    least --min-seconds, in whole blocks, as many for the fast model as for the slow one;
    the JSON states the detectable change and the spread it rests on."""
    argv = ["ab", str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), "--threads", "1"]
    argv += ["--sessions", "6", "--block", "5", "--runs", "1", "--min-seconds", "0.05"]
    assert edgeship([*argv, "--no-memory", "--json"]) in (0, 1)
    report = ABReport.from_json(capsys.readouterr().out)
    [device] = report.devices
    cnn, mlp = device.models
    assert cnn.session_runs == mlp.session_runs and len(cnn.session_runs) == 6
    assert all(n % 5 == 0 for n in cnn.session_runs)
    for model in (cnn, mlp):
        sessions = np.split(np.asarray(model.samples_ms), np.cumsum(model.session_runs)[:-1])
        assert all(s.sum() >= 50.0 for s in sessions)
    [c] = device.comparisons
    assert c.ratio_spread is not None and c.min_detectable_change is not None
    assert report.design.min_seconds == 0.05 and report.stable is device.stable


def test_ab_table_and_a_passing_gate_exit_0(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ab", str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), *FAST, "--no-memory"]
    assert edgeship([*argv, "--min-speedup", "1.3"]) == 0
    out, err = capsys.readouterr()
    assert "mlp" in out and "faster" in out
    verdict = out.rstrip().splitlines()[-1]
    assert verdict.startswith("PASS: 1/1 gate checks passed")
    advice = err.rstrip().splitlines()[-1]
    if "UNSTABLE" in verdict:  # a busy machine: the advice does not deploy from it
        assert advice.startswith("next: the measurement was unstable on local: ")
    else:  # no --data: the advice says the outputs were not compared
        assert advice == (
            f"next: deploy mlp: edgeship deploy {zoo / 'mlp.onnx'} (its outputs were not "
            "compared with cnn.onnx's: run the A/B with --data FILE.npz first)"
        )


def test_different_input_signatures_need_inputs_per_model(
    zoo: Path, add_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ab", str(zoo / "cnn.onnx"), str(add_onnx), *FAST, "--no-memory"]
    assert edgeship(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "error: models have different input signatures (cnn: input float32 [batch, 1, 8, 8]; "
        "add: x float32 [batch, 4]): give --inputs once per model"
    )
    x, digit = tmp_path / "x.npy", tmp_path / "digit.npy"
    np.save(x, np.ones((1, 4), dtype=np.float32))
    np.save(digit, np.zeros((1, 1, 8, 8), dtype=np.float32))
    inputs = ["--inputs", str(digit), "--inputs", str(x)]
    assert edgeship([*argv, *inputs, "--json"]) == 0
    report = ABReport.from_json(capsys.readouterr().out)
    assert [m.name for m in report.devices[0].models] == ["cnn", "add"]
    # each array went in by position and is named by the model's own input
    assert [[(t.name, t.shape) for t in m.inputs] for m in report.devices[0].models] == [
        [("input", list(np.load(digit).shape))],
        [("x", list(np.load(x).shape))],
    ]


@pytest.fixture
def unlabelled(tmp_path: Path) -> Path:
    path = tmp_path / "unlabelled.npz"
    np.savez(path, input=np.zeros((4, 1, 8, 8), dtype=np.float32))
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gate", "max-speed=2"], "error: unknown gate 'max-speed' (known: min-speedup, "),
        (["--max-accuracy-drop", "0.5"], "error: gate max-accuracy-drop needs a data set with"),
        (["--data", "{unlabelled}", "--max-accuracy-drop", "0.5"], "but {unlabelled} has no"),
        (["--inputs", "{unlabelled}"] * 2, "error: --inputs given 2 times for 3 models"),
        (["--sessions", "2"], "error: --sessions must be at least 6"),
        (["--precision", "5"], "error: --precision is a fraction of the median (0.02 for 2 %)"),
        (["--cpus", "x"], "argument --cpus: expected CPU numbers like 2,3 or 0-3"),
        (["--cpus", "0", "--threads", "2"], "error: --threads 2 with --cpus 0 (1 CPU): the"),
        (["--min-speedup", "fast"], "argument --min-speedup: invalid float value: 'fast'"),
        (["--alpha", "0.7"], "error: --alpha must be in (0, 0.5), got 0.7"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    zoo: Path,
    unlabelled: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = [str(zoo / "cnn.onnx"), str(zoo / "mlp.onnx"), str(zoo / "mlp.onnx")]
    argv = ["ab", *models, *(e.format(unlabelled=unlabelled) for e in extra)]
    assert edgeship(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message.format(unlabelled=unlabelled) in err


def test_a_missing_model_is_an_error_with_json(
    zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert edgeship(["ab", str(zoo / "cnn.onnx"), str(tmp_path / "nope.onnx"), "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["error"]["type"] == "ModelError"
    assert err == f"error: {tmp_path / 'nope.onnx'}: no such model file\n"
