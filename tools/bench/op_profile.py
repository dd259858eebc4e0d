"""Per-operator profiles against end-to-end times, and the profiler's own overhead.

On ``local`` (the runtime in a subprocess, one thread), for each model: the timed profile
(its p50), then ``profile_ops`` (a second, profiling session; both sessions run in turn):
the operators' summed time against the same runs' end-to-end median, the gap ("outside
operators"), and the profiler's overhead (profiled end-to-end median over the plain
session's). Models: the zoo CNN and MLP, and three built here: a stack of 3x3 convolutions
(64 channels, 56x56), a small transformer encoder (torch.nn.TransformerEncoder, 2 layers,
d_model 128, 4 heads, 32 tokens, exported with torch.onnx) and the conv stack converted
to TFLite (litert_torch; skipped without it), whose report must say per-op timing is not
exposed, with no numbers. Last, the per-op-type diff of the zoo CNN against its dynamic
INT8 quantization (ONNX Runtime's quantize_dynamic, per channel): where the time went.

Checks (exit 1 when one fails): every ONNX model's per-op sum is within 10 % of its
end-to-end median or the gap is reported as outside operators (always, so this checks
the figures exist and add up: ops + outside = end-to-end); the TFLite report has no
per-op numbers and the one-line note.

    python tools/bench/op_profile.py [--runs 300] [--threads 1] [--out DIR]   # models: temp dir
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.core.config import ProfileConfig  # noqa: E402
from edgeship.targets.local import LocalTarget  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from edgeship_runtime.opprofile import OpsPolicy, op_type_diff, summary_line  # noqa: E402
from edgeship_runtime.report import ProfileReport  # noqa: E402
from tools.zoo.build import OPSET, build_zoo  # noqa: E402

WITHIN = 0.10


def conv_stack() -> tuple[object, tuple[int, ...]]:
    import torch
    from torch import nn

    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, padding=1), nn.ReLU()]
    for _ in range(5):
        layers += [nn.Conv2d(64, 64, 3, padding=1), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval(), (1, 3, 56, 56)


def transformer() -> tuple[object, tuple[int, ...]]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval(), (1, 32, 128)


def export_onnx(model: object, shape: tuple[int, ...], path: Path) -> Path:
    import torch

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.backends.mha.set_fastpath_enabled(False)  # its fused kernel has no ONNX export
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,  # type: ignore[arg-type]
            (torch.randn(*shape),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def export_tflite(model: object, shape: tuple[int, ...], path: Path) -> Path | None:
    if path.exists():
        return path
    try:
        import litert_torch
        import torch
    except ImportError:
        return None
    edge = litert_torch.convert(model, (torch.randn(*shape),))
    edge.export(str(path))
    return path


def quantize_dynamic(src: Path, out: Path) -> Path:
    if not out.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True)
    return out


def measure(target: LocalTarget, model: Path, args: argparse.Namespace) -> ProfileReport:
    config = ProfileConfig(
        policy=MeasurePolicy(warmup=10, runs=args.runs),
        session=SessionOptions(threads=args.threads),
    )
    return target.profile(model, config, ops=OpsPolicy(runs=args.runs, warmup=10))


def row(name: str, report: ProfileReport) -> tuple[list[str], bool]:
    ops = report.ops
    assert ops is not None
    p50 = f"{report.latency_ms.p50:.3f}"
    if not ops.available:
        return [name, p50, "-", "-", "-", "-", "-", "-", "-", ops.note or ""], ops.nodes == []
    assert ops.ops_ms and ops.profiled_ms and ops.plain_ms and ops.outside_ops_ms is not None
    coverage = ops.ops_ms / ops.profiled_ms
    adds_up = abs(ops.ops_ms + ops.outside_ops_ms - ops.profiled_ms) < 1e-9
    top = ", ".join(f"{t.op_type} {100 * t.share:.0f}%" for t in ops.op_types[:3])
    return [
        name,
        p50,
        f"{ops.plain_ms:.3f}",
        f"{ops.profiled_ms:.3f}",
        f"{ops.session_ms:.3f}",
        f"{ops.ops_ms:.3f}",
        f"{100 * coverage:.1f}%" + ("" if abs(1 - coverage) <= WITHIN else " *"),
        f"{ops.outside_ops_ms:.3f}",
        f"{100 * (ops.profiler_overhead or 0):+.1f}%",
        f"{len(ops.nodes)} nodes: {top}",
    ], adds_up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "edgeship-bench-op_profile"
    )
    args = parser.parse_args()
    zoo = build_zoo().root
    stack, stack_shape = conv_stack()
    encoder, encoder_shape = transformer()
    models = {
        "zoo cnn.onnx": zoo / "cnn.onnx",
        "zoo mlp.onnx": zoo / "mlp.onnx",
        "conv stack": export_onnx(stack, stack_shape, args.out / "convstack.onnx"),
        "transformer": export_onnx(encoder, encoder_shape, args.out / "transformer.onnx"),
    }
    tflite = export_tflite(stack, stack_shape, args.out / "convstack.tflite")
    if tflite is not None:
        models["conv stack .tflite"] = tflite
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; ", end="")
    print(f"{args.runs} timed runs and {args.runs} profiled runs, {args.threads} thread(s)")
    headers = ["model", "timed p50", "plain", "profiled", "in ORT", "ops sum", "ops/e2e",
               "outside", "overhead", "where"]  # fmt: skip
    rows, ok = [], True
    with LocalTarget() as target:
        for name, path in models.items():
            cells, fine = row(name, measure(target, path, args))
            rows.append(cells)
            ok &= fine
        print(_table(headers, rows))
        print(
            "ms, medians; plain/profiled: end-to-end of the two sessions run in turn; in ORT: "
            "its model_run event; * = ops sum more than 10 % off the profiled end-to-end"
        )
        base = zoo / "cnn.onnx"
        int8 = quantize_dynamic(base, args.out / "cnn-int8-dynamic.onnx")
        b, v = measure(target, base, args), measure(target, int8, args)
    assert b.ops is not None and v.ops is not None
    print(f"\nzoo cnn: fp32 against int8-dynamic, per op type (ms):\n  fp32: {summary_line(b.ops)}")
    print(f"  int8-dynamic: {summary_line(v.ops)}")
    diff = [[t, f"{bm:.4f}", f"{vm:.4f}", f"{vm - bm:+.4f}"] for t, bm, vm in
            op_type_diff(b.ops.op_types, v.ops.op_types)]  # fmt: skip
    print(_table(["op type", "fp32", "int8-dynamic", "delta"], diff))
    print(f"p50: fp32 {b.latency_ms.p50:.3f} ms, int8-dynamic {v.latency_ms.p50:.3f} ms")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
