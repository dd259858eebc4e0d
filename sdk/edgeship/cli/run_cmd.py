"""``edgeship run MODEL --inputs X.npz --out Y.npz``: inference on a device, outputs back."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeship.cli.common import (
    on_targets,
    session_from_args,
    session_options,
    target_options,
    targets_from_args,
)
from edgeship.cli.output import print_json, print_stderr
from edgeship.core.config import ProfileConfig
from edgeship.core.errors import UsageError
from edgeship.targets import Target
from edgeship.targets.devices import load_inventory
from edgeship.targets.shard import run_sharded
from edgeship_runtime.inputs import load_arrays

__all__ = ["out_path", "register", "run", "run_shard"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", parents=[target_options()])
    p.add_argument("model", type=Path, help=".onnx or .tflite file")
    p.add_argument("--inputs", type=Path, required=True, help=".npz by input name, or .npy")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="outputs .npz (with several targets: OUT with the target name added)",
    )
    p.add_argument("--backend", help="onnxruntime or tflite (default: by model format)")
    session_options(p)
    p.add_argument(
        "--shard",
        action="store_true",
        help="split the data set across the devices of --target, run them in parallel and "
        "write one OUT with the outputs in order; a failed device's share re-runs elsewhere",
    )
    p.set_defaults(handler=run)


def out_path(out: Path, target: str, several: bool) -> Path:
    return out.with_name(f"{out.stem}.{target}{out.suffix or '.npz'}") if several else out


def run(ns: argparse.Namespace) -> int:
    if ns.out.suffix != ".npz":
        raise UsageError(f"--out {ns.out}: outputs are written as .npz")
    arrays = load_arrays(str(ns.inputs))
    several = len(load_inventory(ns.targets).expand(ns.target)) > 1
    config = ProfileConfig(session=session_from_args(ns), backend=ns.backend)
    if ns.shard:
        return run_shard(ns, arrays, config)

    def infer(target: Target) -> str:
        outputs = target.run(ns.model, arrays, config)
        path = out_path(ns.out, target.name, several)
        np.savez(path, **outputs)  # type: ignore[arg-type]
        return f"{path}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in outputs.items())

    return on_targets(ns, infer, lambda line: {"written": line}, lambda line: line)


def run_shard(ns: argparse.Namespace, arrays: dict[str, np.ndarray], config: ProfileConfig) -> int:
    """``--shard``: one data set across every device of ``--target``, one OUT."""
    done = run_sharded(ns.model, targets_from_args(ns), arrays, config)
    np.savez(ns.out, **done.outputs)  # type: ignore[arg-type]
    for device in done.devices:
        if device.error:
            print_stderr(f"warning: {device.target}: {device.error} (its share ran elsewhere)")
    if ns.json:
        print_json({"out": str(ns.out), **done.to_dict()})
    else:
        print(f"{ns.out}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in done.outputs.items()))
        print(done.describe())
    return 0
