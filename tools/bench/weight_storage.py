"""Weights stored narrower than their nodes compute, side by side in one process: a float
ONNX model against the same with every Conv/MatMul/Gemm weight stored INT8 and decoded by
``Cast``·``Mul`` (what the INT8 fallback's weight-only nodes get), stored INT8 behind a
``DequantizeLinear``, and stored float16 behind a ``Cast``; ONNX Runtime CPU, one thread,
the variants' rounds interleaved. Per variant: its size, the decoding nodes left in ONNX
Runtime's optimised graph, its largest difference from float, its p50 latency.

    python tools/bench/weight_storage.py MODEL.onnx DATA.npz [--rounds 400]

``DATA.npz`` holds the model's input (by name, else its first array); its first row is fed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DECODERS = ("DequantizeLinear", "Cast", "Mul", "MatMulNBits", "DynamicQuantizeMatMul")


def _session(path: Path, optimised: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.optimized_model_filepath = str(optimised)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _as_dequantize(model: Any) -> Any:
    """``model``'s ``Cast``·``Mul`` weight decoders made ``DequantizeLinear`` nodes."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    for mul in [n for n in graph.node if n.op_type == "Mul" and n.name.endswith("_int8_Mul")]:
        stored = mul.name[: -len("_Mul")]
        scale = numpy_helper.to_array(inits[f"{stored}_scale"])
        axis = int(np.argmax(scale.shape))
        flat = numpy_helper.from_array(scale.ravel(), f"{stored}_scale")
        inits[f"{stored}_scale"].CopyFrom(flat)
        dq = helper.make_node(
            "DequantizeLinear", [stored, f"{stored}_scale"], list(mul.output), axis=axis
        )
        rest = [n for n in graph.node if n.name not in (mul.name, f"{stored}_Cast")]
        del graph.node[:]
        graph.node.extend([dq, *rest])
    return model


def main(argv: list[str] | None = None) -> int:
    import onnx

    from edgeship.compress.quantization._weights import float16_weights, int8_weights

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("--rounds", type=int, default=400)
    ns = p.parse_args(argv)
    base = onnx.load(str(ns.model))
    weighted = [n.name for n in base.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    tmp = Path(tempfile.mkdtemp(prefix="weight-storage-"))
    int8 = onnx.load(str(ns.model))
    done = int8_weights(int8, weighted)
    half = onnx.load(str(ns.model))
    float16_weights(half, weighted, 65504.0)
    paths = {"float": ns.model}
    for name, model in [("int8 Cast·Mul", int8), ("float16 Cast", half)]:
        paths[name] = tmp / f"{len(paths)}.onnx"
        onnx.save(model, str(paths[name]))
    paths["int8 DequantizeLinear"] = tmp / "dq.onnx"
    onnx.save(_as_dequantize(int8), str(paths["int8 DequantizeLinear"]))
    data = dict(np.load(ns.data))
    name = base.graph.input[0].name
    x = {name: np.asarray(data.get(name, next(iter(data.values()))))[:1].astype(np.float32)}
    sessions = {k: _session(v, tmp / f"{i}.opt.onnx") for i, (k, v) in enumerate(paths.items())}
    reference = sessions["float"].run(None, x)[0]
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(ns.rounds):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, x)
            times[k].append(time.perf_counter() - t0)
    p50 = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    print(f"{ns.model.name}: {len(done)} of {len(weighted)} weighted nodes; {ns.rounds} rounds")
    for i, k in enumerate(sessions):
        ops = [n.op_type for n in onnx.load(str(tmp / f"{i}.opt.onnx")).graph.node]
        left = ", ".join(f"{op} {ops.count(op)}" for op in DECODERS if op in ops) or "none"
        got = sessions[k].run(None, x)[0]
        error = float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))
        size = paths[k].stat().st_size / ns.model.stat().st_size
        print(
            f"  {k:22s} size {size:.2f}×  p50 {p50[k]:.3f} ms = {p50[k] / p50['float']:.3f}× "
            f"float  max|Δ| {error:.1%} of max|float|  optimised graph: {left}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
