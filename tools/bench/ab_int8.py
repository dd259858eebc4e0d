"""A/B benchmark: the zoo CNN in FP32 against its INT8 quantization, on local and over SSH.

The INT8 variant is made here (not by edgeship's compression tooling): ONNX Runtime's
``quantize_static``, QDQ format, per-channel int8 weights and uint8 activations,
calibrated on 256 images of ``digits_train.npz``. Then ``edgeship ab`` runs FP32 against
INT8 with the digits test set on ``local`` and on one device of a fresh SSH testbed
(needs root, iproute2, openssh-server; ``--no-testbed`` skips it).

Checks (exit 1 when one fails): on every target the verdict is "faster" and the speedup
interval excludes 1. Prints the figures recorded in docs/benchmarks-ab.md.

    python tools/bench/ab_int8.py [--runs 300] [--sessions 10] [--threads 1] [--report DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from edgeship.ab.gates import make_gate  # noqa: E402
from edgeship.ab.reports import write_report  # noqa: E402
from edgeship.ab.result import FASTER, ABReport  # noqa: E402
from edgeship.ab.runner import ABConfig, run_ab  # noqa: E402
from edgeship.ab.schedule import Schedule  # noqa: E402
from edgeship.ab.stats import StatsPolicy  # noqa: E402
from edgeship.ab.table import render  # noqa: E402
from edgeship.core.config import ConnectOptions, Timeouts  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402

CALIBRATION_IMAGES = 256


def quantize_int8(model: Path, train: Path, out: Path) -> Path:
    """Static QDQ quantization, per-channel, calibrated on ``train``'s first images."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with np.load(train) as data:
        images = data["input"][:CALIBRATION_IMAGES]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{"input": images[i : i + 32]} for i in range(0, len(images), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    prepared = out.with_name(out.stem + ".pre.onnx")
    quant_pre_process(str(model), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    prepared.unlink()
    return out


def check(report: ABReport) -> list[str]:
    """What failed of the benchmark's own checks (not the report's gates)."""
    problems = []
    for device in report.devices:
        [c] = device.comparisons
        name = device.target.get("name")
        if c.verdict != FASTER:
            problems.append(f"{name}: verdict {c.verdict!r}, expected 'faster'")
        if c.speedup_ci.low <= 1.0:
            problems.append(f"{name}: speedup interval {c.speedup_ci} includes 1")
    problems += [f"{f.target}: {f.message}" for f in report.failures]
    return problems


def summary(report: ABReport) -> str:
    lines = []
    for device in report.devices:
        [c] = device.comparisons
        base, int8 = device.models
        acc = [m.accuracy.accuracy * 100 if m.accuracy else float("nan") for m in (base, int8)]
        lines.append(
            f"{device.target.get('name')}: FP32 p50 {base.latency.p50_ms * 1000:.1f} µs, "
            f"INT8 p50 {int8.latency.p50_ms * 1000:.1f} µs; speedup {c.speedup:.3f}× "
            f"[{c.speedup_ci.low:.3f}, {c.speedup_ci.high:.3f}], p = {c.p_value:.2g}, "
            f"verdict {c.verdict}; accuracy {acc[0]:.2f}% → {acc[1]:.2f}%, top-1 agreement "
            f"{(c.agreement.top1 * 100 if c.agreement else float('nan')):.2f}%; size × "
            f"{c.size_ratio:.3f}; peak RSS × {c.memory_ratio or float('nan'):.3f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", type=Path, help="write each target's report under DIR")
    parser.add_argument("--no-testbed", action="store_true", help="local only")
    args = parser.parse_args()
    zoo = build_zoo().root
    assert zoo is not None  # a built zoo always knows its directory
    int8 = quantize_int8(
        zoo / "cnn.onnx", zoo / "digits_train.npz", REPO / ".cache" / "bench-ab" / "cnn_int8.onnx"
    )
    config = ABConfig(
        schedule=Schedule(runs=args.runs, sessions=args.sessions),
        stats=StatsPolicy(),
        session=SessionOptions(threads=args.threads),
        data=(zoo / "digits_test.npz",),
        gates=(make_gate("min-speedup", 1.3), make_gate("max-accuracy-drop", 0.5)),
    )
    reports = {"local": run_ab(zoo / "cnn.onnx", [int8], "local", config)}
    if not args.no_testbed:
        from tools.testbed import Testbed

        with (
            tempfile.TemporaryDirectory() as tmp,
            Testbed(1, Path(tmp) / "bed", prefix="esab") as bed,
        ):
            connect = ConnectOptions(
                ssh_config=bed.ssh_config, targets_file=bed.targets, timeouts=Timeouts(command=300)
            )
            reports["ssh"] = run_ab(zoo / "cnn.onnx", [int8], bed.devices[0].name, config, connect)
    problems = []
    for name, report in reports.items():
        print(render(report), end="\n\n")
        if args.report:
            write_report(report, args.report / name)
        problems += check(report)
    print("\n".join(summary(r) for r in reports.values()))
    print("checks: " + ("; ".join(problems) if problems else "all passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
