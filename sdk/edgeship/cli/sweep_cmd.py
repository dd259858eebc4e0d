"""``edgeship sweep MODEL RECIPE.toml --target GROUP --out DIR``: every variant × every board.

Each variant of the recipe (the format: docs/recipes.md) is made from MODEL, then A/B'd
against MODEL on every device of ``--target`` (a group, a device, a comma list), one
measurement at a time per board. Results are stored in DIR as they arrive; running the
same command again skips what is done and redoes what failed. The report (sweep.md,
sweep.json: schema edgeship.sweep/1.1, and sweep.html with its Pareto plots) has a Pareto
front per board and across boards.

Where the work runs: threads here, which start at once; Ray (``edgeship[ray]``) where it
pays: ``--ray local`` starts one here, ``--ray auto`` or ``--ray ADDRESS`` joins a running
cluster (as does ``RAY_ADDRESS`` set), and without ``--ray`` a local Ray when there are
more boards than ``--forks``; ``--ray off``: threads always. How to run one:
docs/sweeps.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeship.cli.common import connect_options, target_options
from edgeship.cli.output import print_json, print_stderr
from edgeship.sweep import (
    Cell,
    Policy,
    SweepConfig,
    SweepEvent,
    VariantRecord,
    board_names,
    open_executor,
    run_sweep,
)
from edgeship.sweep.view import event_line, to_markdown

__all__ = ["register", "run"]

_POLICY = Policy()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[target_options(default_target=None)],
    )
    p.add_argument("model", type=Path, metavar="MODEL", help="the base model (.onnx, .tflite)")
    p.add_argument("recipe", type=Path, metavar="RECIPE.toml", help="the variants to make")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="results (resumable)")
    p.add_argument("--data", type=Path, metavar="D.npz", help="for calibration and training")
    p.add_argument(
        "--eval-data",
        type=Path,
        metavar="T.npz",
        help="inputs with labels run on every board: on-device accuracy",
    )
    w = p.add_argument_group("where the work runs")
    w.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="auto or an address: join that Ray cluster; local: start one here; off: threads "
        "(default: threads, or Ray when RAY_ADDRESS is set or there are more boards than "
        "--forks and Ray is installed)",
    )
    w.add_argument("--cpus", type=int, metavar="N", help="CPUs for compression here (default all)")
    m = p.add_argument_group("measurement of each cell (an A/B against the base)")
    for name, help in (
        ("runs", "timed runs per model"),
        ("sessions", "fresh loads per model"),
        ("block", "consecutive runs per block"),
        ("warmup", "untimed runs per session"),
        ("memory-runs", "runs in the fresh runtime that measures peak memory"),
        ("seed", "seed of orders, inputs, bootstrap"),
    ):
        default = getattr(_POLICY, name.replace("-", "_"))
        m.add_argument(f"--{name}", type=int, default=default, help=f"{help} (default {default})")
    m.add_argument(
        "--min-seconds",
        type=float,
        default=_POLICY.min_seconds,
        metavar="S",
        help=f"timed running per model in each session (default {_POLICY.min_seconds:g})",
    )
    m.add_argument("--threads", type=int, help="runtime threads (default: the recipe's)")
    m.add_argument("--no-memory", action="store_true", help="skip peak memory per model")
    p.set_defaults(handler=run)


def run(ns: argparse.Namespace) -> int:
    from edgeship.compress import load_recipe

    connect = connect_options(ns)
    threads = ns.threads if ns.threads is not None else load_recipe(ns.recipe).threads
    policy = Policy(
        runs=ns.runs,
        sessions=ns.sessions,
        block=ns.block,
        warmup=ns.warmup,
        seed=ns.seed,
        threads=threads,
        memory=not ns.no_memory,
        memory_runs=ns.memory_runs,
        min_seconds=ns.min_seconds,
    )
    config = SweepConfig(
        model=ns.model,
        recipe=ns.recipe,
        targets=ns.target,
        out=ns.out,
        data=ns.data,
        eval_data=ns.eval_data,
        policy=policy,
        connect=connect,
    )
    boards = len(board_names(ns.target, connect))
    with open_executor(ns.ray, connect, cpus=ns.cpus, forks=ns.forks, boards=boards) as executor:
        report = run_sweep(config, executor, _Progress(ns.json))
    if ns.json:
        print_json(report.to_dict())
    else:
        print(to_markdown(report))
        print(
            f"report: {ns.out / 'sweep.html'} {ns.out / 'sweep.md'} {ns.out / 'sweep.json'}",
            file=sys.stderr,
        )
    for cell in report.failed():
        print_stderr(f"error: {event_line(cell)}")
    return 0 if report.complete else 1


class _Progress:
    """One line per finished variant and cell: on stdout, or stderr with ``--json``."""

    def __init__(self, as_json: bool) -> None:
        self.out = sys.stderr if as_json else sys.stdout

    def __call__(self, event: SweepEvent) -> None:
        record = event.record
        if isinstance(record, VariantRecord):
            line = _variant_line(record, event.status)
        elif isinstance(record, Cell):
            line = f"[{event.done}/{event.total}] {event_line(record)}"
            if event.status == "reused":
                line += " (stored)"
        else:
            return
        print(line, file=self.out, flush=True)


def _variant_line(record: VariantRecord, status: str) -> str:
    if not record.ok:
        error = record.error.message if record.error else "?"
        return f"variant {record.name}: failed: {error}"
    what = "stored" if status == "reused" else f"made in {record.compress_s:.1f} s"
    return f"variant {record.name} ({record.method}): {record.size_bytes / 1024:.1f} KiB, {what}"
