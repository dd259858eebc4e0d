"""``edgeship profile --ops/--trace/--cooldown/--fixed-warmup`` and ``ab --ops`` through
the real command line, in this process."""

from __future__ import annotations

import json
from pathlib import Path

from edgeship import ProfileReport
from tests.sdk.conftest import Run

QUICK = ["--runs", "5", "--warmup", "1", "--threads", "1", "--min-seconds", "0"]


def test_profile_ops_table_and_verdict(edgeship: Run, state_onnx: Path) -> None:
    rc, out, err = edgeship("profile", state_onnx, *QUICK, "--ops", "--top", "2")
    assert rc == 0, err
    assert "state.onnx: per operator, ms per run (means of the middle 3 of 5 runs; top 2 of" in out
    assert "op type" in out and "share %" in out and "all operators" in out
    assert "outside them" in out and "ms without: profiler overhead" in out
    assert ("state.onnx: stable (" in out) or ("warning: state.onnx: unstable: " in out)
    assert "energy: " in out


def test_profile_json_is_a_list_with_ops_and_a_trace_file(
    edgeship: Run, add_onnx: Path, state_onnx: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.json"
    rc, out, err = edgeship("profile", add_onnx, state_onnx, *QUICK, "--json", "--trace", trace)
    assert rc == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 2
    reports = [ProfileReport.from_dict(d) for d in data]
    assert all(r.ops is not None and r.ops.available and r.ops.trace is None for r in reports)
    assert all(r.validity is not None and r.energy is not None for r in reports)
    for model in ("add", "state"):  # several models: one file each, named after them
        events = json.loads((tmp_path / f"trace-local-{model}.json").read_text())
        assert any(e.get("cat") == "Node" for e in events)


def test_one_model_one_trace_file(edgeship: Run, add_onnx: Path, tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    rc, _, err = edgeship("profile", add_onnx, *QUICK, "--trace", trace)
    assert rc == 0, err
    assert json.loads(trace.read_text())


def test_litert_ops_say_so_in_one_line(edgeship: Run, tiny_tflite: Path) -> None:
    rc, out, err = edgeship("profile", tiny_tflite, *QUICK, "--ops")
    assert rc == 0, err
    assert "tiny.tflite: per-op timing: not exposed by LiteRT's Python API" in out


def test_fixed_warmup_and_cooldown(edgeship: Run, add_onnx: Path) -> None:
    rc, out, err = edgeship(
        "profile", add_onnx, *QUICK, "--fixed-warmup", "--cooldown", "90", "--json"
    )
    assert rc == 0, err
    (report,) = json.loads(out)
    validity = report["validity"]
    assert validity["warmup_runs"] == 1 and validity["warmup_settled"] is None
    assert validity["cooldown"]["below_c"] == 90.0


def test_ops_refuse_shards(edgeship: Run, add_onnx: Path) -> None:
    rc, _, err = edgeship("profile", add_onnx, "--ops", "--shards", "2")
    assert rc == 2 and "--ops/--trace go without --shards/--pipeline" in err


def test_ab_ops_shows_where_the_time_went(
    edgeship: Run, add_onnx: Path, state_onnx: Path, tmp_path: Path
) -> None:
    rc, out, err = edgeship(
        "ab", add_onnx, add_onnx, "--runs", "40", "--sessions", "6", "--block", "5",
        "--min-seconds", "0.01",
        "--warmup", "2", "--threads", "1", "--no-memory", "--ops", "--shape", "x=2,4",
    )  # fmt: skip
    assert rc == 0, err
    assert "validity: " in out and "sessions stable" in out
    assert "per op type, add.onnx#2 against add.onnx (operators" in out
    assert "per-operator profiles, ms per run:\n  add.onnx: operators " in out
    assert "add.onnx#2: operators " in out and "all operators" in out


def test_profile_times_a_zoo_model_for_its_min_seconds(edgeship: Run) -> None:
    """The time budget on a real trained model: --min-seconds 0.3 gives at least 0.3 s
    of samples, however few --runs asked for; the line says what the window held."""
    from tools.zoo.build import build_zoo

    mlp = build_zoo().path("mlp.onnx")
    args = ["--min-seconds", "0.3", "--runs", "1", "--warmup", "1", "--threads", "1"]
    rc, out, err = edgeship("profile", mlp, *args, "--samples", "--json")
    assert rc == 0, err
    (report,) = json.loads(out)
    samples = report["samples_ms"]
    assert sum(samples) >= 300.0 and report["latency_ms"]["n"] == len(samples) > 1
    assert report["policy"]["min_seconds"] == 0.3 and report["policy"]["steady"] is True
    rc, out, err = edgeship("profile", mlp, *args)
    assert rc == 0, err
    assert "each model: at least 0.3 s and 1 timed runs after at least 1 warm-up runs" in out
    line = next(x for x in out.splitlines() if "mlp.onnx: " in x and "stable" in x)
    assert " s of timed runs: " in line and " runs after " in line
