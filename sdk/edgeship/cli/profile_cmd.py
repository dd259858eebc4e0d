"""``edgeship profile MODEL... [--target local]``: latency, memory and outputs per model.

Every profile is judged ``stable`` or ``unstable`` (with reasons) and reads the device's
power sensors; ``--ops`` adds where the time goes per operator. ``--json`` prints a list
of reports, one per model in the order given, whether one model or several.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.guards import with_cooldown
from edgeship_runtime.inputs import parse_shape_overrides
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.opprofile import OpsPolicy
from edgeship_runtime.report import ProfileReport

from ..config import ParallelConfig, ProfileConfig
from ..errors import UsageError
from ..shard import describe_parallel, profile_parallel
from ..targets import Target
from ..targets.cooldown import CooldownPolicy
from .common import input_options, on_targets, target_options
from .measure_view import TOP_OPS, profile_notes
from .output import profile_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="profile models on a target",
        description=__doc__,
        parents=[target_options()],
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help=".onnx or .tflite file(s)")
    p.add_argument("--backend", help="onnxruntime or tflite (default: by model format)")
    p.add_argument("--runs", type=int, default=100, help="timed runs (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=0.0,
        help="keep running until this much timed time has passed",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op / XNNPACK threads (default 0: the backend decides)",
    )
    p.add_argument(
        "--providers",
        default="",
        help="ONNX Runtime execution providers in preference order, comma-separated",
    )
    input_options(p)
    p.add_argument("--samples", action="store_true", help="include every run's latency")
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
        "runs (ONNX Runtime; LiteRT's Python interpreter exposes no per-op timing)",
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
        ),
        session=SessionOptions(
            threads=ns.threads, providers=tuple(p for p in ns.providers.split(",") if p)
        ),
        backend=ns.backend,
        inputs=ns.inputs,
        shapes=parse_shape_overrides(ns.shape),
        seed=ns.seed,
        samples=ns.samples,
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
    cooldown = None
    if ns.cooldown is not None:
        cooldown = CooldownPolicy(below_c=ns.cooldown, timeout_s=ns.cooldown_timeout)

    def profile_all(target: Target) -> list[ProfileReport]:
        if parallel is not None:
            return [profile_parallel(target, model, config, parallel) for model in models]
        return [profile_one(ns, target, model, config, ops, cooldown) for model in models]

    def render(reports: list[ProfileReport]) -> str:
        views = [profile_table(reports), input_shapes(reports)]
        views += [describe_parallel(r) for r in reports]
        views.append(profile_notes(reports, ns.top))
        return "\n".join(v for v in views if v)

    def to_json(reports: list[ProfileReport]) -> Any:
        return [r.to_dict() for r in reports]

    return on_targets(ns, profile_all, to_json, render)


def input_shapes(reports: list[ProfileReport]) -> str:
    """The inputs each model was measured on (``inputs: cnn.onnx x [1, 1, 8, 8]``)."""
    return "\n".join(
        f"inputs: {r.model.path.rsplit('/', 1)[-1]} "
        + ", ".join(f"{t.name} {t.shape} {t.dtype}" for t in r.inputs)
        for r in reports
    )


def profile_one(
    ns: argparse.Namespace,
    target: Target,
    model: Path,
    config: ProfileConfig,
    ops: OpsPolicy | None,
    cooldown: CooldownPolicy | None,
) -> ProfileReport:
    """One model: cool down if asked, profile (and its operators), write its trace."""
    waited = target.cooldown(cooldown, _cooldown_progress(ns, target)) if cooldown else None
    trace = ns.trace is not None
    if ops is not None and trace:
        ops = OpsPolicy(runs=ops.runs, warmup=ops.warmup, trace=True)
    report = target.profile(model, config, ops=ops)
    if waited is not None and report.validity is not None:
        with_cooldown(report.validity, waited)
    if trace and report.ops is not None and report.ops.trace is not None:
        path = _trace_path(ns, target, model)
        path.write_text(json.dumps(report.ops.trace))
        report.ops.trace = None  # written to its file, not repeated in the report
    return report


def _trace_path(ns: argparse.Namespace, target: Target, model: Path) -> Path:
    """``--trace FILE`` as given for one model on one device; else FILE's stem with the
    device's and model's names."""
    base: Path = ns.trace
    if len(ns.models) == 1 and "," not in str(ns.target or ""):
        return base
    return base.with_name(f"{base.stem}-{target.name}-{model.stem}{base.suffix or '.json'}")


def _cooldown_progress(ns: argparse.Namespace, target: Target) -> Any:
    """A progress line on stderr while cooling down (on a terminal, not with --json)."""
    if ns.json or not sys.stderr.isatty():
        return None

    def show(temperature_c: float, waited_s: float, policy: CooldownPolicy) -> None:
        sys.stderr.write(
            f"\r{target.name}: cooling down, {temperature_c:.1f} °C, waiting for below "
            f"{policy.below_c:g} °C ({waited_s:.0f} of {policy.timeout_s:g} s)\033[K"
        )
        sys.stderr.flush()

    return show
