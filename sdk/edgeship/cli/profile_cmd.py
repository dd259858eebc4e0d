"""``edgeship profile MODEL... [--target local]``: latency, memory and outputs per model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.inputs import parse_shape_overrides
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.report import ProfileReport

from ..config import ProfileConfig
from ..errors import UsageError
from ..shard import ParallelConfig, describe_parallel, profile_parallel
from ..targets import Target
from .common import input_options, on_targets, target_options
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
    p.set_defaults(handler=run)


def config_from_args(ns: argparse.Namespace) -> ProfileConfig:
    return ProfileConfig(
        policy=MeasurePolicy(warmup=ns.warmup, runs=ns.runs, min_seconds=ns.min_seconds),
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

    def profile_all(target: Target) -> list[ProfileReport]:
        if parallel is not None:
            return [profile_parallel(target, model, config, parallel) for model in models]
        return [target.profile(model, config) for model in models]

    def render(reports: list[ProfileReport]) -> str:
        views = [profile_table(reports), *(describe_parallel(r) for r in reports)]
        return "\n".join(v for v in views if v)

    def to_json(reports: list[ProfileReport]) -> Any:
        return reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports]

    return on_targets(ns, profile_all, to_json, render)
