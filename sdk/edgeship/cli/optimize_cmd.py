"""``edgeship optimize MODEL OUT [--target T]``: graph optimization for a target, verified.

Opset conversion (``--opset``), the onnxslim simplifier (constant folding, dead-node
removal; ``--no-simplify`` skips it) and ONNX Runtime's offline optimization at the
highest ``--level`` the target's runtime allows. The result is compared with MODEL on
the target; ``--measure`` also profiles both there, interleaved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeship.cli.common import target_options
from edgeship.cli.convert_cmd import (
    add_verify_options,
    run_verified,
    verify_options,
    verify_table,
)
from edgeship.cli.output import table
from edgeship.optimize import LEVELS, OptimizeConfig, OptimizeReport, optimize
from edgeship.optimize.bench import measure_models
from edgeship.targets import Target
from edgeship_runtime.measure import MeasurePolicy

__all__ = ["register", "render", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        description=__doc__,
        parents=[target_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", type=Path, help=".onnx file")
    p.add_argument("output", metavar="OUT", type=Path, help="the optimized .onnx")
    p.add_argument(
        "--level",
        default="auto",
        choices=("auto", *LEVELS),
        help="ONNX Runtime offline level (default auto: the highest the target allows)",
    )
    p.add_argument(
        "--no-simplify", dest="simplify", action="store_false", help="skip the onnxslim simplifier"
    )
    p.add_argument("--opset", type=int, help="convert to this ONNX opset first")
    p.add_argument(
        "--measure", action="store_true", help="profile MODEL and OUT on the target, interleaved"
    )
    p.add_argument("--runs", type=int, default=100, help="timed runs per round (--measure)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--measure)")
    add_verify_options(p)
    p.set_defaults(handler=run)


def run(ns: argparse.Namespace) -> int:
    data, tolerance = verify_options(ns)
    config = OptimizeConfig(
        level=ns.level,
        simplify=ns.simplify,
        opset=ns.opset,
        verify=data,
        tolerance=tolerance,
        force=ns.force,
    )

    def work(target: Target) -> OptimizeReport:
        report = optimize(ns.model, ns.output, target, config)
        if ns.measure:
            policy = MeasurePolicy(warmup=10, runs=ns.runs)
            report.measurements = measure_models(
                target, {"source": ns.model, "optimized": ns.output}, policy, ns.rounds
            )
        return report

    return run_verified(ns, work, render)


def render(report: OptimizeReport) -> str:
    level = (
        report.level
        if report.level == report.level_requested
        else (f"{report.level} (asked {report.level_requested})")
    )
    lines = [
        f"{report.source.path} → {report.result.path}"
        + (f" ({report.result.size_bytes:,} bytes)" if report.result.size_bytes else "")
        + ("" if report.written else ", NOT written"),
        f"onnxruntime level: {level}" + (f" — {report.level_note}" if report.level_note else ""),
        table(
            ["step", "detail", "nodes", "s"],
            [[s.name, s.detail, str(s.nodes), f"{s.seconds:.2f}"] for s in report.steps],
        ),
        f"ops before: {_ops(report.ops_before)}",
        f"ops after:  {_ops(report.ops_after)}",
        verify_table(report.verification),
    ]
    if report.measurements:
        base = report.measurements[0].p50_ms
        lines.append(
            table(
                ["model", "session", "p50 ms", "mean ms", "load ms", "speed-up"],
                [
                    [
                        m.model,
                        m.setting,
                        f"{m.p50_ms:.4f}",
                        f"{m.mean_ms:.4f}",
                        f"{m.load_ms:.1f}",
                        f"{base / m.p50_ms:.3f}x" if m.p50_ms else "-",
                    ]
                    for m in report.measurements
                ],
            )
        )
    return "\n".join(lines)


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{op}×{n}" for op, n in counts.items()) or "-"
