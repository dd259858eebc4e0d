"""Per-operator profiles: ONNX Runtime's trace read back, the aggregation and the
reconciliation with end-to-end times, and the one line for a backend without per-op times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.backends.base import TracedNode, TracedRun
from edgeship_runtime.backends.onnxruntime import trace_runs
from edgeship_runtime.errors import UsageError
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.model import load_model
from edgeship_runtime.opprofile import (
    NOT_EXPOSED,
    RECONCILED,
    OpsPolicy,
    central_mean,
    central_runs,
    not_exposed,
    op_type_diff,
    profile_ops,
    summarize,
    summary_line,
)
from edgeship_runtime.ops import Runtime
from edgeship_runtime.report import OpProfile
from tests.models import REPO_ROOT


def kernel(name: str, op: str, ts: int, dur: int) -> dict[str, object]:
    return {
        "cat": "Node",
        "name": f"{name}_kernel_time",
        "ts": ts,
        "dur": dur,
        "args": {
            "op_name": op,
            "provider": "CPUExecutionProvider",
            "input_type_shape": [{"float": [1, 8]}, {"float": [8, 8]}],
            "output_type_shape": [{"float": [1, 8]}],
        },
    }


def run_event(ts: int, dur: int) -> dict[str, object]:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


TRACE = [
    {"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 900},
    kernel("mm", "MatMul", 1001, 30),
    kernel("relu", "Relu", 1032, 5),
    run_event(1000, 40),
    kernel("mm", "MatMul", 2001, 50),
    kernel("relu", "Relu", 2052, 7),
    run_event(2000, 60),
    kernel("mm", "MatMul", 3001, 40),
    kernel("relu", "Relu", 3042, 6),
    run_event(3000, 50),
]


def test_the_trace_is_read_run_by_run() -> None:
    runs = trace_runs(TRACE)
    assert [r.dur_us for r in runs] == [40, 60, 50]
    assert [[n.name for n in r.nodes] for r in runs] == [["mm", "relu"]] * 3
    first = runs[0].nodes[0]
    assert (first.op_type, first.provider, first.dur_us) == ("MatMul", "CPUExecutionProvider", 30)
    assert first.input_shapes == ((1, 8), (8, 8)) and first.output_shapes == ((1, 8),)


def test_a_subgraph_node_counts_once_within_its_parent() -> None:
    nested = [
        kernel("if", "If", 1001, 30),
        kernel("then/mm", "MatMul", 1001, 20),  # same start: the parent still comes first
        kernel("then/relu", "Relu", 1022, 5),
        kernel("after", "Relu", 1031, 4),
        run_event(1000, 40),
    ]
    (run,) = trace_runs(nested)
    assert [n.name for n in run.nodes] == ["if", "after"]
    assert sum(n.dur_us for n in run.nodes) <= run.dur_us


def test_summary_means_shares_and_reconciliation() -> None:
    ops = summarize(trace_runs(TRACE), plain_ms=[0.05] * 3, profiled_ms=[0.06] * 3, backend="ort")
    assert ops.available and ops.runs == ops.central_runs == 3  # under four runs: all central
    assert [(n.name, n.time_ms) for n in ops.nodes] == [
        ("mm", pytest.approx(0.040)),
        ("relu", pytest.approx(0.006)),
    ]
    assert sum(n.share for n in ops.nodes) == pytest.approx(1.0)
    assert [(t.op_type, t.nodes) for t in ops.op_types] == [("MatMul", 1), ("Relu", 1)]
    assert ops.ops_ms == pytest.approx(0.046)  # mean of the per-run sums 35, 57, 46 µs
    assert ops.session_ms == pytest.approx(0.050)
    assert ops.outside_ops_ms == pytest.approx(0.06 - 0.046)
    assert ops.profiler_overhead == pytest.approx(0.2)
    line = summary_line(ops)
    assert line.startswith("operators 0.0460 + outside them 0.0140 = 0.0600 ms end-to-end")
    assert (
        "0.0500 ms without: profiler overhead +20.0 % (beyond 10 %: the profiler costs about "
        "5.0 µs per operator, part of it in their times; 2 of 2 operators (100 % of the "
        "operators' time) run under 10× that (0.0500 ms): their times and shares may be "
        "overstated by more than 10 %)"
    ) in line
    assert line.endswith("(means of the middle 3 of 3 runs)")


def test_the_line_names_the_operators_the_profilers_cost_overstates() -> None:
    """Only an operator under ten times the profiler's cost per operator is said to be
    overstated: at 3 µs each Relu (6 µs), not MatMul (40 µs)."""

    def line(plain_ms: float, profiled_ms: float) -> str:
        runs = trace_runs(TRACE)
        return summary_line(summarize(runs, [plain_ms] * 3, [profiled_ms] * 3, backend="ort"))

    assert (
        "; 1 of 2 operators (13 % of the operators' time) run under 10× that (0.0300 ms): "
        "their times and shares may be overstated by more than 10 %)"
    ) in line(0.054, 0.06)
    assert "2 of 2 operators (100 % of the operators' time)" in line(0.05, 0.07)  # 10 µs each
    assert (
        "costs about 0.6 µs per operator, part of it in their times; every operator runs "
        "over 10× that)"
    ) in line(0.0099, 0.011)
    assert "profiler overhead -25.0 % (beyond 10 %) (means" in line(0.08, 0.06)


def heavy_tailed_runs(seed: int, n_runs: int = 200, n_nodes: int = 120) -> list[TracedRun]:
    """Runs in which a few nodes each time wait for a preempted thread: every node's
    median is small, yet no run is as short as the sum of the medians."""
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(n_runs):
        durs = rng.uniform(8, 12, n_nodes)
        hit = rng.choice(n_nodes, size=3, replace=False)
        durs[hit] += rng.uniform(500, 1500, 3)
        nodes = tuple(
            TracedNode(f"n{i}", ("Conv", "Relu", "Add")[i % 3], float(d))
            for i, d in enumerate(durs)
        )
        runs.append(TracedRun(float(durs.sum()) + 50, nodes))
    return runs


def test_types_sum_to_the_operators_total_where_medians_did_not() -> None:
    runs = heavy_tailed_runs(0)
    totals_ms = [sum(n.dur_us for n in r.nodes) / 1000 for r in runs]
    e2e = [t + 0.05 for t in totals_ms]
    ops = summarize(runs, plain_ms=e2e, profiled_ms=e2e, backend="ort")
    medians_ms = sum(float(np.median([r.nodes[i].dur_us for r in runs])) / 1000 for i in range(120))
    assert medians_ms < 0.5 * float(np.median(totals_ms))  # the defect a median per node had
    assert ops.ops_ms is not None and ops.outside_ops_ms is not None
    assert sum(t.total_ms for t in ops.op_types) == pytest.approx(ops.ops_ms, rel=1e-9)
    assert sum(n.time_ms for n in ops.nodes) == pytest.approx(ops.ops_ms, rel=1e-9)
    assert sum(t.share for t in ops.op_types) == pytest.approx(1.0)
    assert ops.ops_ms + ops.outside_ops_ms == pytest.approx(ops.profiled_ms, rel=1e-12)
    assert ops.outside_ops_ms == pytest.approx(0.05)
    assert ops.central_runs == 100
    assert min(totals_ms) <= ops.ops_ms <= max(totals_ms)


def test_central_runs_are_the_middle_half_by_end_to_end_time() -> None:
    assert central_runs([5.0, 1.0, 9.0, 3.0, 7.0, 100.0, 2.0, 4.0]) == [0, 3, 4, 7]
    assert central_runs([2.0, 1.0, 3.0]) == [0, 1, 2]
    assert central_mean([1.0, 2.0, 3.0, 1000.0]) == pytest.approx(2.5)


def test_the_slowest_runs_do_not_move_the_figures() -> None:
    runs = [TracedRun(100, (TracedNode("a", "Conv", 80.0),))] * 8
    slow = [TracedRun(5000, (TracedNode("a", "Conv", 4000.0),))] * 2
    ops = summarize(runs + slow, [], [0.1] * 8 + [5.0] * 2, "ort")
    assert ops.ops_ms == pytest.approx(0.080) and ops.profiled_ms == pytest.approx(0.1)


def test_end_to_end_times_must_pair_with_the_runs() -> None:
    with pytest.raises(ValueError, match="2 end-to-end times for 3 traced runs"):
        summarize(trace_runs(TRACE), [], [0.1, 0.1], "ort")


def test_a_node_missing_from_a_run_counts_zero_there() -> None:
    node = TracedNode("branch", "If", 10.0)
    runs = [TracedRun(10, (node,)), TracedRun(1, ()), TracedRun(1, ())]
    (timed,) = summarize(runs, [], [], "ort").nodes
    assert timed.time_ms == pytest.approx(10 / 3 / 1000)


def test_no_recorded_run_is_no_profile() -> None:
    ops = summarize([], [1.0], [1.0], "ort")
    assert not ops.available and ops.note == "the profiler recorded no runs"


def test_op_type_diff_names_what_appeared_and_went() -> None:
    base = summarize(trace_runs(TRACE), [], [], "ort").op_types
    variant = summarize(
        [
            TracedRun(
                90,
                (
                    TracedNode("q", "DynamicQuantizeLinear", 20),
                    TracedNode("c", "MatMulInteger", 60),
                ),
            )
        ],
        [],
        [],
        "ort",
    ).op_types
    rows = op_type_diff(base, variant)
    assert rows[0] == ("MatMulInteger", 0.0, 0.06)
    assert ("MatMul", 0.04, 0.0) in rows and ("Relu", 0.006, 0.0) in rows


def test_onnx_runtime_operators_in_a_session_of_their_own(state_onnx: Path) -> None:
    model = load_model(str(state_onnx))
    feeds = generate_feeds(model.session.signature, {})
    before = model.session.run(feeds)
    ops = profile_ops(model, feeds, OpsPolicy(runs=20, warmup=3, trace=True))
    assert ops.available and ops.backend == "onnxruntime" and ops.runs == 20
    assert ops.nodes and all(n.provider == "CPUExecutionProvider" for n in ops.nodes)
    assert {t.op_type for t in ops.op_types} == {n.op_type for n in ops.nodes}
    assert ops.ops_ms is not None and ops.profiled_ms is not None and ops.plain_ms is not None
    assert 0 < ops.ops_ms <= ops.profiled_ms
    assert ops.outside_ops_ms == pytest.approx(ops.profiled_ms - ops.ops_ms)
    assert ops.trace is not None and any(e.get("cat") == "Node" for e in ops.trace)
    json.dumps(ops.trace)  # Chrome trace events, as JSON
    after = model.session.run(feeds)  # the timed session was not touched
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def reconcile(path: Path, shapes: dict[str, tuple[int, ...]]) -> OpProfile:
    """``profile_ops`` on one thread, 200 runs, as ``profile --ops`` does it."""
    model = load_model(str(path), options=SessionOptions(threads=1))
    try:
        feeds = generate_feeds(model.session.signature, shapes)
        return profile_ops(model, feeds, OpsPolicy(runs=200, warmup=20))
    finally:
        model.close()


def assert_adds_up(ops: OpProfile) -> None:
    """Op types sum to the operators' total within 2 %, operators plus outside to the
    end-to-end time with the profiler."""
    assert ops.available and ops.ops_ms and ops.profiled_ms and ops.plain_ms
    assert ops.outside_ops_ms is not None and ops.profiler_overhead is not None
    types = sum(t.total_ms for t in ops.op_types)
    assert abs(types - ops.ops_ms) <= 0.02 * ops.ops_ms
    assert ops.ops_ms + ops.outside_ops_ms == pytest.approx(ops.profiled_ms, rel=1e-9)
    assert ops.profiler_overhead == pytest.approx(ops.profiled_ms / ops.plain_ms - 1)


def assert_reconciled(ops: OpProfile) -> None:
    """Operators plus outside within 10 % of the end-to-end time without the profiler:
    checked on a machine with fewer runnable processes than cores (on a busy one, two
    plain sessions in turn differ by more than that)."""
    assert_adds_up(ops)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load >= cores:
        pytest.skip(f"load average {load:.1f} on {cores} cores: too busy to time within 10 %")
    assert ops.plain_ms is not None and ops.outside_ops_ms is not None
    assert ops.ops_ms is not None
    gap = abs(ops.ops_ms + ops.outside_ops_ms - ops.plain_ms) / ops.plain_ms
    assert gap <= RECONCILED, summary_line(ops)
    assert "(within 10 %)" in summary_line(ops)


@pytest.fixture(scope="module")
def zoo_cnn() -> Path:
    from tools.zoo.build import build_zoo

    return build_zoo().path("cnn.onnx")


@pytest.mark.slow
def test_the_zoo_cnn_reconciles(zoo_cnn: Path) -> None:
    one = reconcile(zoo_cnn, {})
    assert_adds_up(one)  # at batch 1 the profiler's ~5-15 µs per operator is 10-30 %:
    assert_explained(one)  # the line says which, and the cost per operator when beyond
    assert_reconciled(reconcile(zoo_cnn, {"input": (64, 1, 8, 8)}))


def assert_explained(ops: OpProfile) -> None:
    """The reconciliation line says whether operators and outside are within 10 % of the
    time without the profiler, and the profiler's cost per operator when they are not."""
    line = summary_line(ops)
    assert ops.profiler_overhead is not None
    if abs(ops.profiler_overhead) > RECONCILED:
        assert "(beyond 10 %: the profiler costs about " in line
        assert " µs per operator, part of it in their times; " in line
    else:
        assert "(within 10 %)" in line


EXPORT_MOBILENET = (
    "import sys; from pathlib import Path; "
    "from tools.bench.op_profile import export_onnx, mobilenet_v2; "
    "export_onnx(*mobilenet_v2(224), Path(sys.argv[1]))"
)


@pytest.mark.e2e  # MobileNetV2 exported from transformers, a real model: .ci/run's second tier
@pytest.mark.slow
@pytest.mark.skipif(find_spec("transformers") is None, reason="needs transformers")
def test_a_third_party_graph_reconciles(tmp_path: Path) -> None:
    path = tmp_path / "mobilenet_v2.onnx"  # exported in a child: transformers stays out
    subprocess.run(
        [sys.executable, "-c", EXPORT_MOBILENET, str(path)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    ops = reconcile(path, {})
    assert len(ops.nodes) >= 50 and {"Conv", "Gemm"} <= {t.op_type for t in ops.op_types}
    assert_adds_up(ops)  # on a quiet machine its ~100 operators of ~60 µs each carry ~11 µs
    assert_explained(ops)  # of the profiler's apiece: +10.3 % measured, at the 10 % bound


def test_the_trace_stays_home_unless_asked(add_onnx: Path) -> None:
    model = load_model(str(add_onnx))
    feeds = generate_feeds(model.session.signature, {"x": (2, 4)})
    assert profile_ops(model, feeds, OpsPolicy(runs=2, warmup=0)).trace is None


def test_litert_says_it_exposes_no_per_op_timing(tiny_tflite: Path) -> None:
    runtime = Runtime()
    handle = runtime.load({"path": str(tiny_tflite)})["handle"]
    result = runtime.profile_ops({"handle": handle, "runs": 2, "warmup": 0})
    assert result["available"] is False and result["nodes"] == []
    assert result["note"] == NOT_EXPOSED["tflite"]
    assert result["note"].startswith("per-op timing: not exposed by LiteRT's Python API")
    assert summary_line(OpProfile(**result)) == result["note"]
    runtime.close()


def test_a_backend_without_the_capability_gets_a_generic_line() -> None:
    assert not_exposed("other") == "per-op timing: not exposed by the other backend"


def test_the_ops_through_the_runtime(add_onnx: Path) -> None:
    runtime = Runtime()
    handle = runtime.load({"path": str(add_onnx), "threads": 1})["handle"]
    result = runtime.profile_ops(
        {"handle": handle, "runs": 3, "warmup": 1, "shapes": {"x": [2, 4]}}
    )
    assert result["available"] is True and result["runs"] == 3
    state = runtime.conditions({})
    assert set(state) >= {"temperature_c", "governors", "cur_freq_mhz", "throttle_counts"}
    runtime.close()


@pytest.mark.parametrize(
    ("args", "needle"),
    [({"runs": 0}, "runs must be at least 1"), ({"warmup": -1}, "warmup must be 0 or more")],
)
def test_bad_ops_policy(args: dict[str, int], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        OpsPolicy(**args)
