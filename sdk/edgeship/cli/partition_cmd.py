"""``edgeship partition MODEL --stages K --out DIR``: split an ONNX graph into K stages.

Cut points balance the stages by cost (``--cost flops``, estimated, or ``--cost
profile``, per-node times from ONNX Runtime's profiler on this host); tensors needed
further on pass through the stages between. The stages, run in sequence on ``--target``,
must reproduce the model's outputs; ``DIR/manifest.json`` lists them in order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeship.cli.common import shape_option, target_options
from edgeship.cli.convert_cmd import (
    add_verify_options,
    run_verified,
    verify_options,
    verify_table,
)
from edgeship.cli.output import table
from edgeship.partition import PartitionConfig, PartitionManifest, partition
from edgeship_runtime.inputs import parse_shape_overrides

__all__ = ["register", "render", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "partition",
        description=__doc__,
        parents=[target_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", type=Path, help=".onnx file")
    p.add_argument("--stages", type=int, required=True, metavar="K", help="number of stages")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory for stage_*.onnx and manifest.json",
    )
    p.add_argument(
        "--cost",
        choices=("flops", "profile"),
        default="flops",
        help="node cost: estimated FLOPs (default) or profiled time",
    )
    shape_option(p, "bind a dynamic input's dims for costing (default 1)")
    p.add_argument(
        "--slack",
        type=float,
        default=0.05,
        help="let the largest stage exceed the optimum by this fraction to cut "
        "fewer bytes (default 0.05)",
    )
    p.add_argument("--profile-runs", type=int, default=20, help="runs for --cost profile")
    add_verify_options(p)
    p.set_defaults(handler=run)


def run(ns: argparse.Namespace) -> int:
    data, tolerance = verify_options(ns)
    config = PartitionConfig(
        stages=ns.stages,
        cost=ns.cost,
        shapes=parse_shape_overrides(ns.shape),
        slack=ns.slack,
        profile_runs=ns.profile_runs,
        verify=data,
        tolerance=tolerance,
        force=ns.force,
    )
    return run_verified(ns, lambda target: partition(ns.model, ns.out, target, config), render)


def render(manifest: PartitionManifest) -> str:
    rows = [
        [
            s.file,
            str(s.nodes),
            f"{s.cost:,.0f}",
            f"{100 * s.cost_share:.1f}%",
            _names(s.inputs),
            _names(s.outputs),
            _names(s.passthrough),
        ]
        for s in manifest.stages
    ]
    cross = ", ".join(f"{b / 1024:.1f} KiB" for b in manifest.crossing_bytes) or "-"
    return "\n".join(
        [
            f"{manifest.source.path}: {len(manifest.stages)} stages by {manifest.cost_model} "
            f"(largest/mean {manifest.imbalance():.2f}); bytes across each cut: {cross}",
            table(
                [
                    "stage",
                    "nodes",
                    f"cost ({manifest.cost_unit})",
                    "share",
                    "inputs",
                    "outputs",
                    "passthrough",
                ],
                rows,
            ),
            verify_table(manifest.verification),
        ]
    )


def _names(names: list[str]) -> str:
    text = ", ".join(names) or "-"
    return text if len(text) <= 40 else text[:37] + "..."
