"""Quantization benchmark: zoo CNN and MLP, FP32 against static INT8 (QDQ, per channel,
MinMax on 256 training samples), dynamic INT8 and FP16, measured side by side.

Targets (static INT8 on the CNN): ≥ 2.5× faster at batch 1, ≤ 0.3× the file size,
accuracy drop ≤ 0.5 pt. The MLP (≈ 9 µs per call) is held to size and accuracy only. A
128-channel CNN ("wide", trained here on the digits, 3 epochs) shows the speed-up where
compute, not per-node overhead, dominates.

Usage: ``python tools/bench/compress_quant.py [--threads 1] [--rounds 7] [--runs 500]``
"""

from __future__ import annotations

import sys

from compress_common import measure, parser, report, train_wide, zoo  # type: ignore[import-not-found]


def main(argv: list[str] | None = None) -> int:
    ns = parser(__doc__ or "").parse_args(argv)
    from edgeship.compress import CompressOptions, QuantizeConfig, load_dataset, quantize

    manifest = zoo()
    train = load_dataset(manifest.path("digits_train.npz"))
    test = load_dataset(manifest.path("digits_test.npz"))
    assert train is not None and test is not None
    ns.out.mkdir(parents=True, exist_ok=True)
    lines = []
    bases = {name: manifest.path(f"{name}.onnx") for name in ("cnn", "mlp")}
    bases["wide"] = train_wide(ns.out / "wide.onnx", train)
    for name, base in bases.items():
        methods = ("int8-static",) if name == "wide" else ("int8-static", "int8-dynamic", "fp16")
        for method in methods:
            out = ns.out / f"{name}.{method}.onnx"
            quantize(base, QuantizeConfig(method), train.take(256), out, CompressOptions())
            line = measure(name, method, base, out, test, ns)
            if name in ("cnn", "wide") and method == "int8-static":
                line.targets = {
                    "speedup": (2.5, ">=", 0),
                    "size_ratio": (0.3, "<=", 0),
                    "drop_pt": (0.5, "<=", 0),
                }
            elif name == "mlp" and method == "int8-static":
                line.targets = {"size_ratio": (0.3, "<=", 0), "drop_pt": (0.5, "<=", 0)}
            lines.append(line)
    return report(lines, ns)


if __name__ == "__main__":
    sys.exit(main())
