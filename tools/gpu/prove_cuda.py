"""CPU against CUDA against TensorRT on this machine's GPU, through edgeship's own runtime.

A stack of 3x3 convolutions (built here with ``onnx.helper``, random weights, input
``x [1, 3, 224, 224]``) lies where a deploy puts a model (``ROOT/blobs/``), so TensorRT's
engine cache goes where it goes on a board: ``ROOT/cache/trt/<sha256>/``. Each variant is
loaded by a runtime process of its own (``LocalTarget``: the protocol an SSH board
speaks), profiled, and run once on one input whose outputs are compared with the CPU's:

    cpu          CPUExecutionProvider
    cuda         CUDAExecutionProvider
    trt-build    TensorRT (then CUDA), engine cache on, empty: the engine is built
    trt-cached   the same again, in a new process: the engine comes from the disk
    trt-fp16     TensorRT with fp16 kernels: a second engine, of its own

Per variant: the providers that ran (and any asked for that did not), load and first
inference (ms: TensorRT builds or loads its engine in one of them), p50/p90 latency (ms),
max |Δ| of the outputs against the CPU's, and the engine cache's size on disk. Written to
``--out`` as ``prove_cuda.json`` too. Exit status 1 when CUDA or TensorRT did not run, or
the cached TensorRT load was not faster than the one that built its engine.

    python tools/gpu/prove_cuda.py [--runs 200] [--out DIR]     (tools/gpu/prove_cuda.sh)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.core.config import ProfileConfig  # noqa: E402
from edgeship.targets.local import LocalTarget  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.errors import EdgeshipError  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
VARIANTS = (
    ("cpu", SessionOptions(providers=(CPU,))),
    ("cuda", SessionOptions(providers=(CUDA,))),
    ("trt-build", SessionOptions(providers=(TRT, CUDA))),
    ("trt-cached", SessionOptions(providers=(TRT, CUDA))),
    ("trt-fp16", SessionOptions(providers=(TRT, CUDA), trt_fp16=True)),
)
SIDE, CHANNELS, LAYERS = 224, 32, 6


def conv_stack(path: Path) -> Path:
    """``x [1, 3, 224, 224]`` → conv 3→32 stride 2 → 6 × (conv 3x3 32→32, Relu) → global
    average pool → ``y [1, 32, 1, 1]``; He-scaled random weights keep activations finite."""
    rng = np.random.default_rng(0)

    def weight(name: str, c_out: int, c_in: int) -> onnx.TensorProto:
        scale = np.sqrt(2.0 / (c_in * 9))
        return numpy_helper.from_array(
            (rng.standard_normal((c_out, c_in, 3, 3)) * scale).astype(np.float32), name
        )

    inits = [weight("w0", CHANNELS, 3)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["h0"], strides=[2, 2], pads=[1, 1, 1, 1])]
    for i in range(1, LAYERS + 1):
        inits.append(weight(f"w{i}", CHANNELS, CHANNELS))
        nodes.append(helper.make_node("Conv", [f"h{i - 1}", f"w{i}"], [f"c{i}"], pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"h{i}"]))
    nodes.append(helper.make_node("GlobalAveragePool", [f"h{LAYERS}"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "conv_stack",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS, 1, 1])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def cache_bytes(root: Path) -> dict[str, int]:
    """Bytes under each engine-cache directory (``<sha256>/ort<version>-<precision>``)."""
    sizes: dict[str, int] = {}
    for directory in sorted((root / "cache" / "trt").glob("*/*")):
        key = f"{directory.parent.name[:12]}/{directory.name}"
        sizes[key] = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    return sizes


def measure(model: Path, session: SessionOptions, x: np.ndarray, runs: int) -> dict[str, Any]:
    config = ProfileConfig(policy=MeasurePolicy(warmup=10, runs=runs), session=session)
    with LocalTarget() as target, target.load(model, config) as loaded:
        report = loaded.profile()
        y = loaded.run({"x": x})["y"]
    return {
        "providers": report.backend.providers,
        "not_run": report.backend.providers_not_run,
        "load_ms": report.load_ms,
        "first_inference_ms": report.first_inference_ms,
        "p50_ms": report.latency_ms.p50,
        "p90_ms": report.latency_ms.p90,
        "y": y,
    }


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = f"{'variant':<11} {'ran':<22} {'load ms':>9} {'first ms':>9} {'p50 ms':>8} "
    head += f"{'p90 ms':>8} {'max|Δ| vs cpu':>14}  not run"
    lines = [head]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"{name:<11} error: {r['error']}")
            continue
        ran = ",".join(p.replace("ExecutionProvider", "") for p in r["providers"])
        lines.append(
            f"{name:<11} {ran:<22} {r['load_ms']:>9.1f} {r['first_inference_ms']:>9.2f} "
            f"{r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} {r['max_abs_diff']:>14.3g}  "
            f"{','.join(r['not_run']) or '-'}"
        )
    return "\n".join(lines)


def verdict(rows: dict[str, dict[str, Any]]) -> list[str]:
    """What failed: a GPU variant that did not run on its GPU provider, or a cached
    TensorRT load that cost as much as the build."""
    failures = [f"{name}: {r['error']}" for name, r in rows.items() if "error" in r]
    failures += [
        f"{name}: ran {r['providers']}, not {r['not_run']}"
        for name, r in rows.items()
        if r.get("not_run")
    ]

    def startup(r: dict[str, Any]) -> float:
        return float(r["load_ms"] + r["first_inference_ms"])

    built, cached = rows["trt-build"], rows["trt-cached"]
    if "error" not in built and "error" not in cached and not startup(cached) < startup(built):
        failures.append(
            f"trt-cached: load + first inference {startup(cached):.0f} ms, not below the "
            f"build's {startup(built):.0f} ms"
        )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per variant")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT") or None)
    ns = parser.parse_args()
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}: {onnxruntime.get_available_providers()}")
    work = Path(tempfile.mkdtemp(prefix="prove-cuda-"))
    root = work / "root"
    (root / "blobs").mkdir(parents=True)
    model = conv_stack(root / "blobs" / "conv.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, SIDE, SIDE)).astype(np.float32)
    rows: dict[str, dict[str, Any]] = {}
    caches: dict[str, dict[str, int]] = {}
    for name, session in VARIANTS:
        try:
            rows[name] = measure(model, session, x, ns.runs)
        except EdgeshipError as exc:  # this variant failed: record it, go on
            rows[name] = {"error": str(exc)}
        caches[name] = cache_bytes(root)
        print(f"{name}: {rows[name].get('error', 'done')}", flush=True)
    reference = rows["cpu"]["y"]
    for r in rows.values():
        if "y" in r:
            r["max_abs_diff"] = float(np.max(np.abs(r.pop("y") - reference)))
    print(table(rows))
    print("engine cache after each variant (bytes):")
    for name, sizes in caches.items():
        print(f"  {name:<11} {json.dumps(sizes) if sizes else '(none)'}")
    failures = verdict(rows)
    for line in failures:
        print(f"FAILED: {line}")
    if ns.out is not None:
        ns.out.mkdir(parents=True, exist_ok=True)
        result = {"onnxruntime": onnxruntime.__version__, "variants": rows, "caches": caches}
        (ns.out / "prove_cuda.json").write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
