"""Optimized vs unoptimized latency, measured side by side (issue: migration).

Models: the zoo's mlp and cnn, and a model with foldable constants (``y = relu(x @ (A @ B
+ C))`` with 512×512 constants, plus a dead branch): ``edgeship optimize`` (onnxslim, then
ONNX Runtime's offline optimization at the level the local target allows) writes the
optimized file; then source and optimized run on the local target in interleaved rounds
under two session settings:

* ``online all``  — ONNX Runtime's default: it optimizes again at load time, so the
  offline pass mostly buys load time;
* ``online off``  — graph optimizations disabled at load (the fast-start setting an
  offline-optimized model allows): the offline pass is all the optimization there is.

Each figure is the median of the per-round p50 (one thread, batch 1).

    python tools/bench/migrate_optimize.py [--rounds 9] [--runs 300] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.optimize import OptimizeConfig, optimize  # noqa: E402
from edgeship.optimize.bench import measure_models  # noqa: E402
from edgeship.targets import LocalTarget  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402

FOLD_WIDTH = 512


def foldable_model(path: Path, width: int = FOLD_WIDTH) -> Path:
    """``relu(x @ (A @ B + C))`` with constant A, B, C and a dead Sigmoid branch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def weight(name: str) -> onnx.TensorProto:
        values = rng.standard_normal((width, width)) / np.sqrt(width)
        return numpy_helper.from_array(values.astype(np.float32), name)

    nodes = [
        helper.make_node("MatMul", ["A", "B"], ["AB"]),
        helper.make_node("Add", ["AB", "C"], ["W"]),
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
        helper.make_node("Sigmoid", ["h"], ["unused"]),
    ]
    graph = helper.make_graph(
        nodes,
        "foldable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        initializer=[weight("A"), weight("B"), weight("C")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


SESSIONS = {
    "online all": SessionOptions(threads=1),
    "online off": SessionOptions(threads=1, graph_optimization="disable"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    zoo = build_zoo()
    policy = MeasurePolicy(warmup=20, runs=args.runs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalTarget() as target:
        sources = {
            "mlp": zoo.path("mlp.onnx"),
            "cnn": zoo.path("cnn.onnx"),
            "foldable": foldable_model(Path(tmp) / "foldable.onnx"),
        }
        for name, source in sources.items():
            out = Path(tmp) / f"{name}.opt.onnx"
            report = optimize(source, out, target, OptimizeConfig())
            nodes = f"{report.steps[0].nodes}->{report.steps[-1].nodes}"
            found = measure_models(
                target, {"source": source, "optimized": out}, policy, args.rounds, SESSIONS
            )
            by = {(m.model, m.setting): m for m in found}
            for setting in SESSIONS:
                src, opt = by[("source", setting)], by[("optimized", setting)]
                rows.append(
                    {
                        "model": name,
                        "level": report.level,
                        "nodes": nodes,
                        "session": setting,
                        "source_p50_ms": src.p50_ms,
                        "optimized_p50_ms": opt.p50_ms,
                        "speedup": src.p50_ms / opt.p50_ms,
                        "source_load_ms": src.load_ms,
                        "optimized_load_ms": opt.load_ms,
                        "source_rounds": src.p50_per_round_ms,
                        "optimized_rounds": opt.p50_per_round_ms,
                    }
                )
    print(
        f"{'model':9} {'level':5} {'nodes':6} {'session':10} {'src p50 ms':>11} "
        f"{'opt p50 ms':>11} {'speed-up':>9} {'src load':>9} {'opt load':>9}"
    )
    for r in rows:
        print(
            f"{r['model']:9} {r['level']:5} {r['nodes']:6} {r['session']:10} "
            f"{r['source_p50_ms']:11.4f} {r['optimized_p50_ms']:11.4f} {r['speedup']:8.2f}x "
            f"{r['source_load_ms']:8.1f}  {r['optimized_load_ms']:8.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
