"""Per-operator profiles reconciled: op types against the operators' total, operators plus
the time outside them against the end-to-end time without the profiler.

On ``local`` (the runtime in a subprocess, one thread), for each model: the timed profile
(its p50), then ``profile_ops`` (a second, profiling session; both sessions run in turn).
Every per-operator figure is a mean over the same central runs (the middle half by
end-to-end time; see ``edgeship_runtime.opprofile``). Per model: the op types' sum
against the operators' total (must be within 2 %), operators + outside (= end-to-end with
the profiler) against the plain session's end-to-end time: the profiler's overhead, and
its cost per operator ((profiled - plain) / nodes). Models: the zoo CNN at batch 1 and 64
and the MLP; a third-party graph, transformers' MobileNetV2 (random weights, 10 classes,
224x224; a thousand exported nodes, TensorFlow-style padding; skipped without
transformers); a stack of 3x3 convolutions (64 channels, 56x56), a small transformer
encoder (torch.nn.TransformerEncoder, 2 layers, d_model 128, 4 heads, 32 tokens) and the
conv stack as TFLite (litert_torch; skipped without it), whose report must say per-op
timing is not exposed, with no numbers. Last, the per-op-type diff of the zoo CNN against
its dynamic INT8 quantization (ONNX Runtime's quantize_dynamic, per channel). And what the
profiler costs per operator, and how much of that lands inside the operators' recorded
times, from chains of 8 and 64 tiny Neg, Add, Gemm and Conv nodes (the 56 nodes' difference):
why the reconciliation line says an operator under ten times that cost is overstated.

Checks (exit 1 when one fails): every ONNX model's op types sum to its operators' total
within 2 % and operators + outside equal its end-to-end time with the profiler; the TFLite
report has no per-op numbers and the one-line note. Whether operators + outside come
within 10 % of the plain end-to-end time is reported per model, not checked: it is the
profiler's own overhead, which a model with short operators cannot keep under 10 %.

    python tools/bench/op_profile.py [--runs 300] [--threads 1] [--out DIR]   # models: temp dir
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.core.config import ProfileConfig  # noqa: E402
from edgeship.targets.local import LocalTarget  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from edgeship_runtime.opprofile import (  # noqa: E402
    RECONCILED,
    OpsPolicy,
    cost_per_operator_us,
    op_type_diff,
    summary_line,
)
from edgeship_runtime.report import ProfileReport  # noqa: E402
from tools.zoo.build import OPSET, build_zoo  # noqa: E402

TYPES_WITHIN = 0.02


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


def mobilenet_v2(side: int = 224) -> tuple[object, tuple[int, ...]]:
    """transformers' MobileNetV2 for image classification (random weights, 10 classes) at
    ``side`` x ``side``, returning logits: a graph as third parties export it."""
    import torch

    with _torchvision_hidden_if_broken(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    class Logits(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(pixel_values=x).logits

    torch.manual_seed(0)
    config = MobileNetV2Config(image_size=side, num_labels=10)
    return Logits(MobileNetV2ForImageClassification(config)).eval(), (1, 3, side, side)


@contextlib.contextmanager
def _torchvision_hidden_if_broken() -> Iterator[None]:
    """transformers imports torchvision when it is installed; a torchvision built for
    another torch fails that import, so it is hidden while transformers loads."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "torchvision"}
        for name in saved:
            del sys.modules[name]
        sys.modules["torchvision"] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            del sys.modules["torchvision"]
            sys.modules.update(saved)
    else:
        yield


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


def measure(
    target: LocalTarget, model: Path, args: argparse.Namespace, batch: int = 1
) -> ProfileReport:
    config = ProfileConfig(
        policy=MeasurePolicy(warmup=10, runs=args.runs),
        session=SessionOptions(threads=args.threads),
        shapes={"input": (batch, 1, 8, 8)} if batch != 1 else {},
    )
    return target.profile(model, config, ops=OpsPolicy(runs=args.runs, warmup=10))


CHAIN_OPS = ("Neg", "Add", "Gemm", "Conv")
CHAIN_LENGTHS = (8, 64)


def chain(op: str, length: int, path: Path) -> Path:
    """``length`` ``op`` nodes in a row on a tiny tensor (4 values; Add, Gemm and Conv with
    their constant inputs): each node's real work is well under a microsecond."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, 4, 1, 1] if op == "Conv" else [1, 4]
    eye = np.eye(4, dtype=np.float32)
    constants: dict[str, list[np.ndarray]] = {
        "Neg": [],
        "Add": [np.ones((1, 4), np.float32)],
        "Gemm": [eye, np.zeros(4, np.float32)],
        "Conv": [eye.reshape(4, 4, 1, 1), np.zeros(4, np.float32)],
    }
    nodes, weights = [], []
    for i in range(length):
        names = [f"c{i}_{k}" for k in range(len(constants[op]))]
        weights += [
            numpy_helper.from_array(c, n) for c, n in zip(constants[op], names, strict=True)
        ]
        nodes.append(helper.make_node(op, [f"t{i}", *names], [f"t{i + 1}"], name=f"{op}{i}"))
    graph = helper.make_graph(
        nodes,
        f"{op}-chain",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(f"t{length}", TensorProto.FLOAT, shape)],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def profiler_cost(target: LocalTarget, args: argparse.Namespace) -> list[list[str]]:
    """Per op type, from chains of 8 and 64 nodes (the difference, so what every run pays
    once cancels): µs per node of real work (plain), of recorded operator time, of the
    profiler's cost in all and of the part of it inside the recorded time."""
    rows = []
    for op in CHAIN_OPS:
        figures: list[tuple[float, float, float]] = []
        for length in CHAIN_LENGTHS:
            report = measure(
                target, chain(op, length, args.out / f"chain-{op}-{length}.onnx"), args
            )
            ops = report.ops
            assert ops is not None and ops.ops_ms is not None
            assert ops.profiled_ms is not None and ops.plain_ms is not None
            figures.append((ops.plain_ms, ops.ops_ms, ops.profiled_ms))
        (plain8, ops8, prof8), (plain64, ops64, prof64) = figures
        per_node = 1000 / (CHAIN_LENGTHS[1] - CHAIN_LENGTHS[0])
        real = (plain64 - plain8) * per_node
        recorded = (ops64 - ops8) * per_node
        cost = ((prof64 - plain64) - (prof8 - plain8)) * per_node
        rows.append([op, f"{real:.2f}", f"{recorded:.2f}", f"{cost:.2f}", f"{recorded - real:.2f}"])
    return rows


def row(name: str, report: ProfileReport) -> tuple[list[str], bool]:
    """The model's reconciliation row, and whether its figures add up."""
    ops = report.ops
    assert ops is not None
    p50 = f"{report.latency_ms.p50:.3f}"
    if not ops.available:
        return [name, p50, *["-"] * 9, ops.note or ""], ops.nodes == [] and bool(ops.note)
    assert ops.ops_ms and ops.profiled_ms and ops.plain_ms and ops.outside_ops_ms is not None
    types = sum(t.total_ms for t in ops.op_types)
    adds_up = abs(types - ops.ops_ms) <= TYPES_WITHIN * ops.ops_ms
    adds_up &= abs(ops.ops_ms + ops.outside_ops_ms - ops.profiled_ms) <= 1e-9 * ops.profiled_ms
    overhead = ops.profiled_ms / ops.plain_ms - 1
    per_op_us = cost_per_operator_us(ops)
    assert per_op_us is not None
    top = ", ".join(f"{t.op_type} {100 * t.share:.0f}%" for t in ops.op_types[:3])
    return [
        name,
        p50,
        str(len(ops.nodes)),
        f"{types:.3f}",
        f"{ops.ops_ms:.3f}",
        f"{ops.outside_ops_ms:.3f}",
        f"{ops.profiled_ms:.3f}",
        f"{ops.plain_ms:.3f}",
        f"{100 * overhead:+.1f}%",
        f"{per_op_us:.1f}",
        "yes" if abs(overhead) <= RECONCILED else "no",
        top,
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
    models: dict[str, tuple[Path, int]] = {
        "zoo cnn.onnx": (zoo / "cnn.onnx", 1),
        "zoo cnn.onnx, batch 64": (zoo / "cnn.onnx", 64),
        "zoo mlp.onnx": (zoo / "mlp.onnx", 1),
    }
    if importlib.util.find_spec("transformers") is not None:
        path = args.out / "mobilenet_v2-224.onnx"
        models["MobileNetV2 (transformers), 224x224"] = (
            path if path.exists() else export_onnx(*mobilenet_v2(224), path),
            1,
        )
    models["conv stack"] = (export_onnx(stack, stack_shape, args.out / "convstack.onnx"), 1)
    models["transformer"] = (export_onnx(encoder, encoder_shape, args.out / "transformer.onnx"), 1)
    tflite = export_tflite(stack, stack_shape, args.out / "convstack.tflite")
    if tflite is not None:
        models["conv stack .tflite"] = (tflite, 1)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; ", end="")
    print(f"{args.runs} timed runs and {args.runs} profiled runs, {args.threads} thread(s)")
    headers = ["model", "timed p50", "nodes", "types sum", "ops", "outside", "ops+outside",
               "plain", "overhead", "µs/op", "within 10%", "where"]  # fmt: skip
    rows, ok = [], True
    with LocalTarget() as target:
        for name, (path, batch) in models.items():
            cells, fine = row(name, measure(target, path, args, batch))
            rows.append(cells)
            ok &= fine
        print(_table(headers, rows))
        print(
            "ms per run, means of the middle half of the profiled runs (plain: of the plain "
            "session's, run in turn); ops+outside = end-to-end with the profiler; overhead = "
            "ops+outside over plain; µs/op = the profiler's cost per operator"
        )
        base = zoo / "cnn.onnx"
        int8 = quantize_dynamic(base, args.out / "cnn-int8-dynamic.onnx")
        b, v = measure(target, base, args), measure(target, int8, args)
        cost = profiler_cost(target, args)
    assert b.ops is not None and v.ops is not None
    print(f"\nzoo cnn: fp32 against int8-dynamic, per op type (ms):\n  fp32: {summary_line(b.ops)}")
    print(f"  int8-dynamic: {summary_line(v.ops)}")
    diff = [[t, f"{bm:.4f}", f"{vm:.4f}", f"{vm - bm:+.4f}"] for t, bm, vm in
            op_type_diff(b.ops.op_types, v.ops.op_types)]  # fmt: skip
    print(_table(["op type", "fp32", "int8-dynamic", "delta"], diff))
    print(f"p50: fp32 {b.latency_ms.p50:.3f} ms, int8-dynamic {v.latency_ms.p50:.3f} ms")
    print(f"\nthe profiler's cost per operator, from chains of {CHAIN_LENGTHS} tiny nodes (µs):")
    print(_table(["op", "real work", "recorded", "profiler cost", "of it inside"], cost))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
