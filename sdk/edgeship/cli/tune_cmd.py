"""``edgeship tune MODEL --target T``: find the fastest session settings on the device.

Tries thread counts, the execution-provider chains of the board profile that the device
has, and ONNX Runtime's sequential/parallel execution modes, each profiled on the device
in interleaved rounds; keeps the fastest and stores it per model (by sha256) on the
target, so later ``profile``/``run`` without session options use it. Reports the gain
over the backend's default settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgeship.cli.common import (
    input_options,
    on_targets,
    target_options,
    tensorrt_from_args,
    tensorrt_options,
)
from edgeship.cli.output import status_line, table
from edgeship.optimize import TuneConfig, TuneReport, tune
from edgeship.optimize.tune import MODES, TRIAL_SECONDS
from edgeship.targets import Target
from edgeship_runtime.errors import UsageError
from edgeship_runtime.inputs import parse_shape_overrides
from edgeship_runtime.measure import MeasurePolicy

__all__ = ["config_from_args", "register", "render", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        description=__doc__,
        parents=[target_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", type=Path, help=".onnx or .tflite file")
    p.add_argument(
        "--threads",
        default="",
        metavar="N,N,...",
        help="thread counts to try (default: 1, 2, 4, ... up to the cores)",
    )
    p.add_argument(
        "--providers",
        default="",
        metavar="A,B;C",
        help="provider chains to try, ';' between chains (default: the profile's)",
    )
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="ONNX Runtime execution modes to try (default: sequential,parallel)",
    )
    p.add_argument("--profile", help="board profile to use (default: the device's match)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=TRIAL_SECONDS,
        metavar="S",
        help=f"timed running per candidate and round (default {TRIAL_SECONDS:g})",
    )
    p.add_argument(
        "--runs", type=int, default=30, help="and at least this many timed runs (default 30)"
    )
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument(
        "--min-gain",
        type=float,
        default=1.03,
        help="keep the defaults unless a candidate is this much faster, in most rounds "
        "(default 1.03)",
    )
    p.add_argument(
        "--max-candidates",
        type=int,
        default=32,
        help="refuse to try more settings than this (default 32)",
    )
    tensorrt_options(p)
    input_options(p)
    p.add_argument(
        "--no-store", dest="store", action="store_false", help="only report; do not store the pick"
    )
    p.set_defaults(handler=run)


def config_from_args(ns: argparse.Namespace) -> TuneConfig:
    try:
        threads = tuple(int(t) for t in ns.threads.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--threads takes comma-separated integers, got {ns.threads!r}") from None
    chains = tuple(
        tuple(p.strip() for p in chain.split(",") if p.strip())
        for chain in ns.providers.split(";")
        if chain.strip()
    )
    trt_cache, trt_fp16 = tensorrt_from_args(ns, [p for chain in chains for p in chain])
    return TuneConfig(
        threads=threads,
        providers=chains,
        trt_cache=trt_cache,
        trt_fp16=trt_fp16,
        modes=tuple(m.strip() for m in ns.modes.split(",") if m.strip()),
        policy=MeasurePolicy(warmup=ns.warmup, runs=ns.runs, min_seconds=ns.min_seconds),
        rounds=ns.rounds,
        profile=ns.profile,
        inputs=ns.inputs,
        shapes=parse_shape_overrides(ns.shape),
        seed=ns.seed,
        store=ns.store,
        max_candidates=ns.max_candidates,
        min_gain=ns.min_gain,
    )


def run(ns: argparse.Namespace) -> int:
    config = config_from_args(ns)
    line = status_line(ns.json)

    def operation(target: Target) -> TuneReport:
        def show(trial: int, trials: int, label: str) -> None:
            line.show(target.name, f"trial {trial} of {trials}: {label}", ticking=True)

        try:
            return tune(ns.model, target, config, show)
        finally:
            line.done(target.name)

    def to_json(report: TuneReport) -> Any:
        return report.to_dict()

    with line:
        return on_targets(ns, operation, to_json, render)


def render(report: TuneReport) -> str:
    rows = []
    for trial in [report.default, *report.trials]:
        mark = "← pick" if trial == report.best else ""
        if trial is report.default:
            mark = (mark + " (default)").strip()
        p50 = "failed" if trial.error else f"{trial.p50_ms:.4f}"
        rows.append(
            [
                trial.label(),
                p50,
                " ".join(f"{v:.4f}" for v in trial.p50_per_round_ms),
                trial.error[:60] or mark,
            ]
        )
    lines = [
        f"{report.model.path} ({report.backend}) on {report.target.get('name', '?')}, "
        f"profile {report.profile or '(none)'}: {report.rounds} rounds × {report.runs} runs",
        table(["settings", "p50 ms", "per round", "note"], rows),
        f"pick: {report.best.label()} — {report.best.p50_ms:.4f} ms vs default "
        f"{report.default.p50_ms:.4f} ms: {report.gain:.3f}x",
    ]
    if report.note:
        lines.append(f"kept the defaults: {report.note}")
    lines.append(f"stored: {report.stored_at}" if report.stored_at else "not stored (--no-store)")
    return "\n".join(lines)
