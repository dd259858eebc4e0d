"""The real ``edgeship`` command line, in a subprocess: output, JSON, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship import ProfileReport
from edgeship.cli.main import build_parser, main
from tests import models

QUICK = ["--runs", "5", "--warmup", "1", "--min-seconds", "0"]


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty HOME and working directory: no developer targets file leaks in."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def cli(home: Path) -> Callable[..., Result]:
    env = {**os.environ, "HOME": str(home)}

    def run(*args: str | Path, timeout: float = 120.0) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "edgeship.cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=home,
            env=env,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def assert_clean_error(result: Result, *needles: str, as_json: bool) -> None:
    """Non-zero exit, exactly one ``error:`` line naming the problem, no traceback."""
    assert result.rc != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    if as_json:
        data = result.json()
        assert isinstance(data, dict) and list(data) == ["error"]
        assert set(data["error"]) == {"type", "message"}
        assert data["error"]["message"] == lines[0].removeprefix("error: ")
    else:
        assert result.stdout == ""


# ------------------------------------------------------------------------------ success


def test_profile_several_models_prints_one_table(
    cli: Callable[..., Result], add_onnx: Path, state_onnx: Path, tiny_tflite: Path
) -> None:
    result = cli("profile", add_onnx, state_onnx, tiny_tflite, *QUICK)
    assert result.rc == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "p50 ms" in lines[1] and "peak MiB" in lines[1]
    rows = [line for line in lines if line.startswith(("add.onnx", "state.onnx", "tiny.tflite"))]
    assert [r.split()[0] for r in rows] == ["add.onnx", "state.onnx", "tiny.tflite"]
    assert "onnxruntime (CPU)" in rows[0]
    assert "tflite (XNNPACK)" in rows[2]
    assert "each model: 5 timed runs after at least 1 warm-up runs" in result.stdout
    assert (
        result.stderr
        == f"next: edgeship ab {add_onnx} {state_onnx} {tiny_tflite} (is the difference real?)\n"
    )


def test_profile_json_of_one_model_is_a_list_of_one_report(
    cli: Callable[..., Result], multi_input_onnx: Path, tmp_path: Path
) -> None:
    result = cli(
        "profile", multi_input_onnx, *QUICK, "--json", "--shape", "features=2,3,8",
        "--shape", "token_ids=2,3", "--samples",
    )  # fmt: skip
    assert result.rc == 0, result.stderr
    data = result.json()
    assert isinstance(data, list) and len(data) == 1  # the same shape as for several models
    report = ProfileReport.from_dict(data[0])
    assert report.latency_ms.n == 5
    assert report.samples_ms is not None and len(report.samples_ms) == 5
    assert [(t.name, t.shape, t.dtype) for t in report.inputs] == [
        ("features", [2, 3, 8], "float32"),
        ("token_ids", [2, 3], "int64"),
    ]
    assert report.batch_size == 2


def test_profile_json_of_two_models_is_a_list(
    cli: Callable[..., Result], add_onnx: Path, state_onnx: Path
) -> None:
    result = cli("profile", add_onnx, state_onnx, *QUICK, "--json")
    assert result.rc == 0, result.stderr
    data = result.json()
    assert isinstance(data, list)
    assert [ProfileReport.from_dict(d).model.path for d in data] == [str(add_onnx), str(state_onnx)]


def test_profile_with_an_inputs_file(
    cli: Callable[..., Result], add_onnx: Path, tmp_path: Path
) -> None:
    np.savez(tmp_path / "in.npz", x=np.ones((3, 4), np.float32), labels=np.arange(3))
    result = cli("profile", add_onnx, *QUICK, "--json", "--inputs", tmp_path / "in.npz")
    assert result.rc == 0, result.stderr
    (data,) = result.json()
    report = ProfileReport.from_dict(data)
    assert [(t.name, t.shape) for t in report.inputs] == [("x", [3, 4])]


def test_info(cli: Callable[..., Result]) -> None:
    result = cli("info")
    assert result.rc == 0, result.stderr
    assert "edgeship-runtime" in result.stdout
    assert "onnxruntime" in result.stdout and "tflite" in result.stdout
    data = cli("info", "--json").json()
    assert isinstance(data, dict)
    assert data["runtime"]["protocol"] == 2
    assert {b["name"] for b in data["backends"]} == {"onnxruntime", "tflite"}


def test_bundle_then_run_the_zipapp(
    cli: Callable[..., Result], tmp_path: Path, add_onnx: Path
) -> None:
    out = tmp_path / "dist" / "edgeship-runtime.pyz"
    result = cli("bundle", "--out", out)
    assert result.rc == 0, result.stderr
    assert out.is_file()
    info = subprocess.run(
        [sys.executable, str(out), "info"], capture_output=True, text=True, timeout=60
    )
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["runtime"]["protocol"] == 2
    profile = subprocess.run(
        [sys.executable, str(out), "profile", str(add_onnx), "--runs", "3", "--min-seconds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert profile.returncode == 0, profile.stderr
    assert ProfileReport.from_json(profile.stdout).latency_ms.n == 3


def test_version(cli: Callable[..., Result]) -> None:
    result = cli("--version")
    assert result.rc == 0 and result.stdout.startswith("edgeship ")


# ---------------------------------------------------------------------------- bad input
# Every bad input we promise a clear error for runs through the real executable; further
# variations run in-process through the same ``main`` (same code path, no process start).


def _npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "inputs.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


# (id, args after "profile MODEL", what the error line must say, exit status)
BAD_OPTIONS = [
    ("runs-0", ["--runs", "0"], ["runs must be at least 1, got 0"], 2),
    ("threads-negative", ["--threads", "-1"], ["threads must be 0", "got -1"], 2),
    ("shape-malformed", ["--shape", "x=1,a"], ["bad --shape 'x=1,a'"], 2),
    ("backend-wrong-format", ["--backend", "tflite"], ["'tflite' cannot read onnx models"], 2),
]


@pytest.mark.parametrize(
    ("args", "needles", "status"), [b[1:] for b in BAD_OPTIONS], ids=[b[0] for b in BAD_OPTIONS]
)
def test_bad_option(
    cli: Callable[..., Result], add_onnx: Path, args: list[str], needles: list[str], status: int
) -> None:
    result = cli("profile", add_onnx, *args, "--json")
    assert_clean_error(result, *needles, as_json=True)
    assert result.rc == status


def test_missing_model_file(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("profile", tmp_path / "absent.onnx")
    assert_clean_error(result, "absent.onnx", "no such model file", as_json=False)
    assert result.rc == 1


@pytest.mark.parametrize("fixture", ["text_onnx", "truncated_onnx"])
def test_bad_model_file(
    cli: Callable[..., Result], request: pytest.FixtureRequest, fixture: str
) -> None:
    path: Path = request.getfixturevalue(fixture)
    result = cli("profile", path, *QUICK, "--json")
    assert_clean_error(result, str(path), "not a loadable ONNX model", as_json=True)
    assert result.json()["error"]["type"] == "ModelError"
    assert result.rc == 1


@pytest.mark.parametrize(
    ("arrays", "needles"),
    [
        ({"z": np.zeros((1, 4), np.float32)}, ["missing input(s) ['x']", "unexpected", "'z'"]),
        ({"x": np.zeros((1, 5), np.float32)}, ["input 'x': shape [1, 5], expected [batch, 4]"]),
        ({"x": np.zeros((1, 4), np.float64)}, ["input 'x': dtype float64, expected float32"]),
    ],
    ids=["name", "shape", "dtype"],
)
def test_inputs_that_do_not_fit(
    cli: Callable[..., Result],
    add_onnx: Path,
    tmp_path: Path,
    arrays: dict[str, np.ndarray],
    needles: list[str],
) -> None:
    result = cli("profile", add_onnx, "--inputs", _npz(tmp_path, **arrays), "--json")
    assert_clean_error(result, *needles, as_json=True)
    assert result.json()["error"]["type"] == "InputError"


@pytest.fixture
def main_(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``edgeship.cli.main.main`` in this process; an escaping exception fails the test."""

    def run(*args: str | Path) -> Result:
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(rc, out, err)

    return run


# (id, fixture, args after the model, what the error line must say, exit status)
MORE_BAD = [
    ("warmup-negative", "add_onnx", ["--warmup", "-1"], ["warmup must be 0 or more"], 2),
    ("min-seconds-negative", "add_onnx", ["--min-seconds", "-1"], ["min_seconds must be"], 2),
    ("runs-not-int", "add_onnx", ["--runs", "many"], ["--runs: invalid int value: 'many'"], 2),
    ("shape-no-dims", "add_onnx", ["--shape", "x"], ["bad --shape 'x'"], 2),
    ("shape-zero", "add_onnx", ["--shape", "x=0,4"], ["positive dims"], 2),
    ("shape-unknown-input", "add_onnx", ["--shape", "y=1,4"], ["unknown input(s) ['y']"], 1),
    ("shape-misfit", "add_onnx", ["--shape", "x=1,5"], ["[1, 5] does not fit [batch, 4]"], 1),
    ("backend-unknown", "add_onnx", ["--backend", "tvm"], ["unknown backend 'tvm'"], 2),
    ("providers-absent", "add_onnx", ["--providers", "NoSuchEP"], ["NoSuchEP"], 2),
    ("inference", "failing_onnx", ["--shape", "x=2,6"], ["ONNX Runtime failed to run"], 1),
    ("empty-model", "empty_onnx", [], ["the model file is empty"], 1),
    ("inputs-missing", "add_onnx", ["--inputs", "/nonexistent.npz"], ["no such inputs"], 1),
]


@pytest.mark.parametrize(
    ("fixture", "args", "needles", "status"),
    [b[1:] for b in MORE_BAD],
    ids=[b[0] for b in MORE_BAD],
)
def test_more_bad_input(
    main_: Callable[..., Result],
    request: pytest.FixtureRequest,
    fixture: str,
    args: list[str],
    needles: list[str],
    status: int,
) -> None:
    model: Path = request.getfixturevalue(fixture)
    result = main_("profile", model, *args, "--json")
    assert_clean_error(result, *needles, as_json=True)
    assert result.rc == status


def test_not_a_tflite(main_: Callable[..., Result], tmp_path: Path) -> None:
    path = models.text_file(tmp_path / "fake.tflite")
    assert_clean_error(main_("profile", path, "--json"), "not a TFLite model", as_json=True)


def test_no_command(main_: Callable[..., Result]) -> None:
    assert_clean_error(main_("--json"), "required: COMMAND", as_json=True)


@pytest.mark.parametrize(
    "args",
    [
        ["--ssh-config", "CFG", "--targets", "T.toml", "probe", "pi"],
        ["probe", "pi", "--ssh-config", "CFG", "--targets", "T.toml"],
        [
            "--ssh-config",
            "OTHER",
            "probe",
            "--target",
            "pi",
            "--ssh-config",
            "CFG",
            "--targets",
            "T.toml",
        ],
    ],
    ids=["global", "after-command", "command-overrides-global"],
)
def test_ssh_config_and_targets_before_or_after_the_command(args: list[str]) -> None:
    ns = build_parser().parse_args(args)
    assert (ns.target, ns.ssh_config, ns.targets) == ("pi", Path("CFG"), Path("T.toml"))


def test_probe_without_a_target_is_a_usage_error(main_: Callable[..., Result]) -> None:
    result = main_("probe", "--json")
    assert_clean_error(result, "which device? give a TARGET", as_json=True)
    assert result.rc == 2


def test_global_ssh_config_reaches_the_connection(
    main_: Callable[..., Result], tmp_path: Path
) -> None:
    result = main_("--ssh-config", tmp_path / "absent", "probe", "pi")
    assert_clean_error(result, f"{tmp_path / 'absent'}: no such ssh config file", as_json=False)


# ------------------------------------------------------------------- a newcomer's first hour


@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["ls", "pi"], "pi"),
        (["ls", "--target", "pi"], "pi"),
        (["info", "pi"], "pi"),
        (["info", "--target", "pi"], "pi"),
        (["info"], "local"),
        (["probe", "pi"], "pi"),
        (["rollback", "detector", "--target", "pi"], "pi"),
        (["profile", "m.onnx", "--target", "pi"], "pi"),
    ],
)
def test_a_device_command_takes_its_target_as_argument_or_option(
    args: list[str], target: str
) -> None:
    assert build_parser().parse_args(args).target == target


def test_info_of_a_named_target(main_: Callable[..., Result]) -> None:
    result = main_("info", "local", "--json")
    assert result.rc == 0, result.stderr
    assert result.json()["target"]["kind"] == "local"


def test_ls_without_a_target_is_a_usage_error(main_: Callable[..., Result]) -> None:
    result = main_("ls")
    assert_clean_error(result, "edgeship ls: which device? give a TARGET", as_json=False)
    assert result.rc == 2


def test_a_misspelled_device_is_told_as_a_typo(
    main_: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dns(host: str, *args: object) -> None:
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr("socket.getaddrinfo", no_dns)
    (tmp_path / "edgeship.toml").write_text('[devices.pi-kitchen]\nhost = "pi@192.0.2.1"\n')
    (tmp_path / "ssh_config").write_text("")
    files = ["--targets", tmp_path / "edgeship.toml", "--ssh-config", tmp_path / "ssh_config"]
    for command in (["ls", "pi-kitchn"], ["profile", "m.onnx", "--target", "pi-kitchn"]):
        result = main_(*files, *command, "--json")
        message = "unknown target 'pi-kitchn'; did you mean 'pi-kitchen'?"
        assert_clean_error(result, message, as_json=True)
        assert result.rc == 2


def test_deploying_two_models_of_one_name_is_refused_before_connecting(
    main_: Callable[..., Result], tmp_path: Path, add_onnx: Path
) -> None:
    twin = tmp_path / "add.tflite"
    twin.write_bytes(b"never read")
    result = main_("deploy", add_onnx, twin, "--target", "user@192.0.2.1")
    assert_clean_error(result, "would both be deployed as 'add'", "--name", as_json=False)
    assert result.rc == 2


def test_ab_of_a_model_against_itself_says_it_is_an_a_a_comparison(
    main_: Callable[..., Result], add_onnx: Path
) -> None:
    result = main_(
        "ab",
        add_onnx,
        add_onnx,
        "--runs",
        "40",
        "--sessions",
        "6",
        "--no-memory",
        "--min-seconds",
        "0.01",
    )
    assert result.rc == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"note: {add_onnx} is the base model itself: an A/A comparison (it measures the "
        "noise; expect no significant difference)",
        f"next: an A/A run measures the noise; compare a variant: edgeship ab {add_onnx} VARIANT",
    ]
    assert result.stdout.splitlines()[-1].startswith("no gates set")  # with a caveat if unstable
    assert "peak RSS MiB" in result.stdout
