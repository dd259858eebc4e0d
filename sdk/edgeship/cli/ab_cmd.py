"""``edgeship ab BASE VARIANT... [--target T|GROUP]``: interleaved A/B on devices, with gates.

Exit status: 0 when every gate passed on every device, 1 when a gate failed or a device
failed (the JSON and the table say which, by how much), 2 for a usage error. A variant
that is the base itself (``edgeship ab X X``) is an A/A comparison, a legitimate check of
the noise floor: it runs, with a note saying so.

A thin layer over :func:`edgeship.ab` (arguments → :class:`~edgeship.ab.ABConfig`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edgeship.ab.gates import GATES, Gate, make_gate, parse_gate
from edgeship.ab.reports import write_report
from edgeship.ab.result import ABReport
from edgeship.ab.runner import ABConfig, ABStep
from edgeship.ab.schedule import DEFAULT_SESSION_SECONDS, Schedule
from edgeship.ab.stats import StatsPolicy
from edgeship.ab.table import render
from edgeship.api import ab
from edgeship.cli.common import (
    connect_options,
    cpus_option,
    session_from_args,
    session_options,
    shape_option,
    target_options,
)
from edgeship.cli.next_step import after_ab, print_next
from edgeship.cli.output import print_json, print_stderr, status_line
from edgeship.core.hashing import file_sha256
from edgeship.core.progress import StatusLine
from edgeship_runtime.inputs import parse_shape_overrides
from edgeship_runtime.opprofile import OpsPolicy

__all__ = ["config_from_args", "gates_from_args", "register", "run", "same_as_base"]

_GATE_HELP = {
    "min-speedup": "fail unless base median / variant median >= X",
    "max-accuracy-drop": "fail if accuracy drops by more than X percentage points (needs labels)",
    "max-memory-ratio": "fail if variant peak RSS / base peak RSS > X",
    "max-size-ratio": "fail if variant file size / base file size > X",
    "min-agreement": "fail unless variant and base agree on top-1 for >= X %% of the data",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ab",
        description=__doc__,
        parents=[target_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("base", type=Path, metavar="BASE", help="the reference model")
    p.add_argument("variants", type=Path, nargs="+", metavar="VARIANT", help="models to compare")
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help=".npz data set (inputs + optional 'labels') for quality; once, or once per model",
    )
    p.add_argument(
        "--inputs",
        type=Path,
        action="append",
        default=[],
        help="timing inputs .npz/.npy; once, or once per model (needed when the models' "
        "input signatures differ); default: generated from --seed",
    )
    shape_option(p)
    p.add_argument(
        "--min-seconds",
        type=float,
        default=DEFAULT_SESSION_SECONDS,
        metavar="S",
        help="timed running per model in each session: rounds go on until every model "
        f"has it (default {DEFAULT_SESSION_SECONDS:g})",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=100,
        help="at least this many timed runs per model over all sessions (default 100)",
    )
    p.add_argument("--sessions", type=int, default=10, help="fresh loads per model (default 10)")
    p.add_argument(
        "--precision",
        type=float,
        metavar="FRACTION",
        help="plan the sessions from the first ones' spread so that a change this small "
        "(0.02: 2 %%) is detected; says how many and how long before running them "
        "(--sessions is then the least)",
    )
    p.add_argument("--block", type=int, default=10, help="consecutive runs per block (default 10)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per session (default 10)")
    cpus_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed of orders, inputs, bootstrap")
    p.add_argument("--alpha", type=float, default=0.05, help="test level (default 0.05)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--backend", help="onnxruntime or tflite (default: by model format)")
    session_options(p)
    p.add_argument("--no-memory", action="store_true", help="skip the per-model memory runs")
    p.add_argument(
        "--ops",
        action="store_true",
        help="also profile every model's operators and show, per op type, where each "
        "variant's time went against the base's",
    )
    g = p.add_argument_group("gates (exit status 1 when one fails)")
    g.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a gate by name: {', '.join(GATES)} (repeatable)",
    )
    for name in GATES:
        g.add_argument(f"--{name}", type=float, metavar="X", help=_GATE_HELP.get(name))
    p.add_argument("--report", type=Path, metavar="DIR", help="write ab.json, ab.md, ab.html")
    p.set_defaults(handler=run)


def gates_from_args(ns: argparse.Namespace) -> tuple[Gate, ...]:
    gates = [
        make_gate(name, value)
        for name in GATES
        if (value := getattr(ns, name.replace("-", "_"), None)) is not None
    ]
    return (*gates, *(parse_gate(text) for text in ns.gate))


def config_from_args(ns: argparse.Namespace) -> ABConfig:
    return ABConfig(
        schedule=Schedule(
            runs=ns.runs,
            sessions=ns.sessions,
            block=ns.block,
            warmup=ns.warmup,
            seed=ns.seed,
            min_seconds=ns.min_seconds,
            precision=ns.precision,
            cpus=ns.cpus,
        ),
        stats=StatsPolicy(alpha=ns.alpha, bootstrap=ns.bootstrap, seed=ns.seed),
        session=session_from_args(ns),
        backend=ns.backend,
        inputs=tuple(ns.inputs),
        data=tuple(ns.data),
        shapes=parse_shape_overrides(ns.shape),
        gates=gates_from_args(ns),
        memory=not ns.no_memory,
        ops=OpsPolicy(runs=max(ns.runs // ns.sessions, 20), warmup=ns.warmup) if ns.ops else None,
    )


def same_as_base(base: Path, variants: Sequence[Path]) -> list[Path]:
    """The variants that are the base itself: the same file, or the same bytes."""

    def same(variant: Path) -> bool:
        try:
            if variant.resolve() == base.resolve():
                return True
            if variant.stat().st_size != base.stat().st_size:
                return False
            return file_sha256(variant) == file_sha256(base)
        except OSError:  # a missing file: the A/B itself says so
            return False

    return [v for v in variants if same(v)]


def run(ns: argparse.Namespace) -> int:
    config = config_from_args(ns)
    same = same_as_base(ns.base, ns.variants)
    for variant in same:
        print_stderr(
            f"note: {variant} is the base model itself: an A/A comparison (it measures the "
            "noise; expect no significant difference)"
        )
    with status_line(ns.json) as line:
        report = ab(
            ns.base,
            ns.variants,
            ns.target,
            config=config,
            options=connect_options(ns),
            forks=ns.forks,
            progress=lambda step: _show(line, step),
        )
    if ns.report is not None:
        files = write_report(report, ns.report)
        if not ns.json:
            print(f"report: {files.html} {files.markdown} {files.json}", file=sys.stderr)
    if ns.json:
        print_json(report.to_dict())
    else:
        print(render(report))
    _explain_failures(report)
    print_next(ns, after_ab(report, ns.base, ns.variants, ns.target, ns.sessions, same))
    return 0 if report.passed else 1


def _show(line: StatusLine, step: ABStep) -> None:
    """A device's step on the progress line: ``pi: latency session 3 of 10 · 4 s``."""
    if step.phase == "done":
        line.done(step.target)
    elif step.phase == "latency":
        line.show(step.target, f"latency session {step.index} of {step.total}", ticking=True)
    elif step.phase == "plan":
        print_stderr(f"{step.target}: {step.model}")
    else:
        what = f"{step.phase}: {step.model} ({step.index} of {step.total})"
        line.show(step.target, what, ticking=True)


def _explain_failures(report: ABReport) -> None:
    for failure in report.failures:
        print_stderr(f"error: {failure.target}: {failure.message}")
    for gate in report.failed_gates():
        print_stderr(f"gate failed: {gate.message}")
