"""Conversion fidelity of every route on the zoo models (issue: migration).

For mlp and cnn, each route converts the zoo's source file and verifies the result on
the whole digits test split (360 samples) through the local runtime: max |Δ|, cosine
similarity, top-1 agreement, and the test accuracy of source and result.

    pytorch → onnx     tools.zoo.models:<name> + .zoo/<name>.pt
    pytorch → tflite   same source
    onnx    → tflite   .zoo/<name>.onnx (onnx2torch + litert-torch)
    tflite  → onnx     .zoo/<name>.tflite (tf2onnx: needs TensorFlow, else reported skipped)

Exit status 1 when a route that ran is not equivalent.

    python tools/bench/migrate_convert.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.convert import ConversionError, ConvertConfig, VerifyData, convert  # noqa: E402
from edgeship.convert._torch_source import TorchRunner, build_module, torch_source  # noqa: E402
from edgeship.core.errors import VerificationError  # noqa: E402
from edgeship.targets import LocalTarget  # noqa: E402
from tools.zoo.build import build_zoo, load_split  # noqa: E402

ROUTES = (("pytorch", "onnx"), ("pytorch", "tflite"), ("onnx", "tflite"), ("tflite", "onnx"))


def _accuracy(runner: Any, x: np.ndarray, y: np.ndarray) -> float:
    outputs = runner.run({runner.signature.inputs[0].name: x})
    logits = outputs[runner.signature.outputs[0].name]
    return float((logits.argmax(axis=1) == y).mean())


def _source_accuracy(zoo: Any, name: str, src: str, target: LocalTarget, x, y) -> float:  # type: ignore[no-untyped-def]
    if src == "pytorch":
        module = build_module(f"tools.zoo.models:{name}", zoo.path(f"{name}.pt"))
        return _accuracy(TorchRunner(torch_source(module, {"input": x[:2]})), x, y)
    with target.load(zoo.path(f"{name}.{src}")) as runner:
        return _accuracy(runner, x, y)


def run_route(zoo: Any, name: str, src: str, dst: str, work: Path, target: LocalTarget):  # type: ignore[no-untyped-def]
    data = zoo.path("digits_test.npz")
    x, y = load_split(data)
    source = f"tools.zoo.models:{name}" if src == "pytorch" else str(zoo.path(f"{name}.{src}"))
    out = work / f"{name}-{src}.{dst}"
    config = ConvertConfig(
        source=source,
        output=out,
        weights=zoo.path(f"{name}.pt") if src == "pytorch" else None,
        output_names=("logits",) if src == "pytorch" else (),
        verify=VerifyData(data=data, samples=0),
    )
    try:
        report = convert(config, target).report
    except (ConversionError, VerificationError) as exc:
        return {"model": name, "route": f"{src}->{dst}", "skipped": str(exc)}
    with target.load(out) as runner:
        result_acc = _accuracy(runner, x, y)
    comparison = report.verification.outputs[0]
    return {
        "model": name,
        "route": report.route,
        "converter": report.converter,
        "samples": report.verification.samples,
        "max_abs_diff": comparison.max_abs_diff,
        "cosine": comparison.cosine,
        "top1_agreement": comparison.top1_agreement,
        "source_accuracy": _source_accuracy(zoo, name, src, target, x, y),
        "result_accuracy": result_acc,
        "passed": report.passed,
        "layout": report.layout_statement(),
        "convert_s": report.convert_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    zoo = build_zoo()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalTarget() as target:
        for name in ("mlp", "cnn"):
            for src, dst in ROUTES:
                rows.append(run_route(zoo, name, src, dst, Path(tmp), target))
    head = f"{'model':5} {'route':16} {'max|Δ|':>9} {'cosine':>10} {'top-1':>7} "
    head += f"{'acc src':>8} {'acc out':>8} {'conv s':>7}  ok"
    print(head)
    for r in rows:
        if "skipped" in r:
            print(f"{r['model']:5} {r['route']:16} skipped: {r['skipped'][:90]}")
            continue
        print(
            f"{r['model']:5} {r['route']:16} {r['max_abs_diff']:9.2e} {r['cosine']:10.7f} "
            f"{100 * r['top1_agreement']:6.1f}% {100 * r['source_accuracy']:7.2f}% "
            f"{100 * r['result_accuracy']:7.2f}% {r['convert_s']:7.2f}  "
            f"{'yes' if r['passed'] else 'NO'}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r.get("passed", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
