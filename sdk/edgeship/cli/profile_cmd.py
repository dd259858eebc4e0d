"""``edgeship profile MODEL... [--target local]``: latency, memory and outputs per model.

Every profile is judged ``stable`` or ``unstable`` (with reasons) and reads the device's
power sensors; ``--ops`` adds where the time goes per operator. ``--json`` prints a list
of reports, one per model in the order given, whether one model or several.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeship.cli.common import (
    cpus_option,
    input_options,
    on_targets,
    session_from_args,
    session_options,
    target_options,
)
from edgeship.cli.measure_view import TOP_OPS, input_shapes, profile_notes
from edgeship.cli.next_step import after_profile, print_next
from edgeship.cli.output import print_stderr, profile_table, status_line, window_text
from edgeship.core.config import ParallelConfig, ProfileConfig
from edgeship.core.errors import UsageError
from edgeship.core.progress import StatusLine
from edgeship.targets import Target
from edgeship.targets.cooldown import CooldownPolicy
from edgeship.targets.shard import describe_parallel, profile_parallel
from edgeship_runtime.guards import with_cooldown
from edgeship_runtime.inputs import parse_shape_overrides
from edgeship_runtime.measure import DEFAULT_MIN_SECONDS, MeasurePolicy
from edgeship_runtime.opprofile import OpsPolicy
from edgeship_runtime.report import ProfileReport

__all__ = [
    "config_from_args",
    "measurement_options",
    "parallel_one",
    "profile_one",
    "register",
    "run",
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        description=__doc__,
        parents=[target_options()],
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".onnx or .tflite file(s)")
    p.add_argument("--backend", help="onnxruntime or tflite (default: by model format)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=DEFAULT_MIN_SECONDS,
        metavar="S",
        help="time at least this many seconds of runs per model (default "
        f"{DEFAULT_MIN_SECONDS:g}, as TFLite's benchmark_model); with --shards, of the stream",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=100,
        help="and at least this many timed runs (default 100); with --shards, the requests",
    )
    p.add_argument(
        "--warmup", type=int, default=10, help="untimed runs first, at least (default 10)"
    )
    session_options(p)
    cpus_option(p)
    input_options(p)
    p.add_argument("--samples", action="store_true", help="include every run's latency")
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write profile.json, profile.md and profile.html (latency distribution of "
        "every run, per-operator bars with --ops, validity) into DIR",
    )
    p.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="a stream of --runs requests over N data-parallel worker processes on the "
        "device, each on its own cores (0: one per core); adds throughput, per-shard "
        "latency and utilisation, queueing and scaling efficiency against one shard",
    )
    p.add_argument(
        "--pipeline",
        type=Path,
        metavar="DIR",
        help="run the stages `edgeship partition MODEL --out DIR` wrote as a pipeline of "
        "processes and check its outputs against MODEL",
    )
    measurement_options(p)
    p.set_defaults(handler=run)


def measurement_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("per-operator profile, validity, energy")
    g.add_argument(
        "--ops",
        action="store_true",
        help="also time each operator, in a profiling session of its own after the timed "
        "runs: ms per run per node and op type, adding up to the operators' total, and the "
        "profiler's overhead (ONNX Runtime; LiteRT's Python API has no op profiler); over "
        "--runs runs, a count and not --min-seconds: the profiler's trace grows by about "
        "500-600 bytes per operator per run, tens of MB for a second of a short model's runs",
    )
    g.add_argument(
        "--top", type=int, default=TOP_OPS, metavar="N", help="nodes in the --ops table (10)"
    )
    g.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="write the operator profiler's Chrome trace (open in Perfetto); implies --ops",
    )
    g.add_argument(
        "--cooldown",
        type=float,
        metavar="TEMP_C",
        help="before timing, wait until the device's hottest thermal zone is below TEMP_C",
    )
    g.add_argument(
        "--cooldown-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="longest wait for --cooldown (default 300 s; not cool by then: unstable)",
    )
    g.add_argument(
        "--fixed-warmup",
        action="store_true",
        help="exactly --warmup untimed runs (default: at least --warmup, then on until the "
        "rolling median settles)",
    )


def config_from_args(ns: argparse.Namespace) -> ProfileConfig:
    return ProfileConfig(
        policy=MeasurePolicy(
            warmup=ns.warmup,
            runs=ns.runs,
            min_seconds=ns.min_seconds,
            steady=not getattr(ns, "fixed_warmup", False),
            cpus=getattr(ns, "cpus", ()),
        ),
        session=session_from_args(ns),
        backend=ns.backend,
        inputs=ns.inputs,
        shapes=parse_shape_overrides(ns.shape),
        seed=ns.seed,
        samples=ns.samples or getattr(ns, "report", None) is not None,
    )


def run(ns: argparse.Namespace) -> int:
    config = config_from_args(ns)
    models = [Path(m) for m in ns.models]
    parallel = None
    if ns.shards is not None or ns.pipeline is not None:
        parallel = ParallelConfig(shards=ns.shards, pipeline=ns.pipeline)
        if ns.pipeline is not None and len(models) != 1:
            raise UsageError("--pipeline DIR goes with the one MODEL it was partitioned from")

    ops = OpsPolicy(runs=ns.runs, warmup=ns.warmup) if ns.ops or ns.trace else None
    if ops is not None and parallel is not None:
        raise UsageError("--ops/--trace go without --shards/--pipeline")
    if ns.cpus and parallel is not None:
        raise UsageError("--cpus goes without --shards/--pipeline (each worker has its cores)")
    cooldown = None
    if ns.cooldown is not None:
        cooldown = CooldownPolicy(below_c=ns.cooldown, timeout_s=ns.cooldown_timeout)

    line = status_line(ns.json)
    profiled: dict[str, list[ProfileReport]] = {}

    def profile_all(target: Target) -> list[ProfileReport]:
        if parallel is not None:
            reports = [parallel_one(target, model, config, parallel, line) for model in models]
        else:
            reports = [
                profile_one(ns, target, model, config, ops, cooldown, line) for model in models
            ]
        profiled[target.name] = reports
        return reports

    def render(reports: list[ProfileReport]) -> str:
        views = [profile_table(reports), input_shapes(reports)]
        views += [describe_parallel(r) for r in reports]
        views.append(profile_notes(reports, ns.top))
        return "\n".join(v for v in views if v)

    def to_json(reports: list[ProfileReport]) -> Any:
        return [r.to_dict() for r in reports]

    with line:
        status = on_targets(ns, profile_all, to_json, render)
    if ns.report is not None and profiled:
        from edgeship.cli.profile_report import write_report

        files = write_report(sorted(profiled.items()), ns.report, ns.top)
        if not ns.json:
            print_stderr(f"report: {files.html} {files.markdown} {files.json}")
    print_next(ns, after_profile(models, ns.target))
    return status


def profile_one(
    ns: argparse.Namespace,
    target: Target,
    model: Path,
    config: ProfileConfig,
    ops: OpsPolicy | None,
    cooldown: CooldownPolicy | None,
    line: StatusLine,
) -> ProfileReport:
    """One model: cool down if asked, profile (and its operators), write its trace; each
    step on ``line``."""
    waited = None
    if cooldown is not None:
        try:
            waited = target.cooldown(cooldown, _cooldown_progress(line, target))
        finally:
            line.done(target.name)
    trace = ns.trace is not None
    if ops is not None and trace:
        ops = OpsPolicy(runs=ops.runs, warmup=ops.warmup, trace=True)
    try:
        report = target.profile(
            model, config, ops=ops, progress=_profile_progress(line, target, model, config, ops)
        )
    finally:
        line.done(target.name)
    if waited is not None and report.validity is not None:
        with_cooldown(report.validity, waited)
    if trace and report.ops is not None and report.ops.trace is not None:
        path = _trace_path(ns, target, model)
        path.write_text(json.dumps(report.ops.trace))
        report.ops.trace = None  # written to its file, not repeated in the report
    return report


def parallel_one(
    target: Target, model: Path, config: ProfileConfig, parallel: ParallelConfig, line: StatusLine
) -> ProfileReport:
    """One model as a stream over shards or pipeline stages, its phase on ``line``."""
    text = f"{model.name}: {_parallel_plan(config, parallel)}"
    try:
        return profile_parallel(
            target, model, config, parallel, lambda: line.show(target.name, text, ticking=True)
        )
    finally:
        line.done(target.name)


def _parallel_plan(config: ProfileConfig, parallel: ParallelConfig) -> str:
    """What the device does, in its order (it reports nothing until its report)."""
    runs = config.policy.runs
    if parallel.pipeline is not None:
        plan = f"a stream of {runs} requests through the stages in {parallel.pipeline}"
        return plan + (", then the unsplit model" if parallel.baseline else "")
    shards = f"{parallel.shards} shards" if parallel.shards else "a shard per core"
    plan = f"a stream of {runs} requests over {shards}"
    alone_first = parallel.baseline and parallel.shards != 1  # one shard is its own baseline
    return ("one shard alone, then " if alone_first else "") + plan


def _trace_path(ns: argparse.Namespace, target: Target, model: Path) -> Path:
    """``--trace FILE`` as given for one model on one device; else FILE's stem with the
    device's and model's names."""
    base: Path = ns.trace
    if len(ns.models) == 1 and "," not in str(ns.target or ""):
        return base
    return base.with_name(f"{base.stem}-{target.name}-{model.stem}{base.suffix or '.json'}")


def _cooldown_progress(
    line: StatusLine, target: Target
) -> Callable[[float, float, CooldownPolicy], None]:
    """The device's temperature on ``line`` while it cools down."""

    def show(temperature_c: float, waited_s: float, policy: CooldownPolicy) -> None:
        line.show(
            target.name,
            f"cooling down, {temperature_c:.1f} °C, waiting for below {policy.below_c:g} °C "
            f"({waited_s:.0f} of {policy.timeout_s:g} s)",
        )

    return show


def _profile_progress(
    line: StatusLine, target: Target, model: Path, config: ProfileConfig, ops: OpsPolicy | None
) -> Callable[[str], None]:
    """What the device is doing on ``line``, and for how long: it reports no runs until
    its report, so the host shows the plan and the seconds waited."""
    policy = config.policy
    warmup = "warm-up until steady" if policy.steady else f"{policy.warmup} warm-up runs"
    timing = f"{warmup}, then {window_text(policy.record())}"
    operators = f"per-operator profile, {ops.runs} runs" if ops else ""

    def show(phase: str) -> None:
        text = operators if phase == "ops" else timing
        line.show(target.name, f"{model.name}: {text}", ticking=True)

    return show
