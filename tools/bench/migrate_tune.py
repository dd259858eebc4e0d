"""The tuner's pick against the backend's default settings (issue: migration).

For each zoo model (mlp, cnn; .onnx and, when present, .tflite) ``tune`` runs on the
local target (its settings go to a throw-away cache, not yours), then the pick and the
defaults are measured again, interleaved, with more runs: a check of the tuner's claim
on fresh measurements rather than the ones it chose by (the winner of several noisy
candidates looks better than it is on its own figures).

    python tools/bench/migrate_tune.py [--rounds 3] [--runs 30] [--confirm-runs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.optimize import TuneConfig, tune  # noqa: E402
from edgeship.optimize.bench import measure_models  # noqa: E402
from edgeship.targets import LocalTarget  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--confirm-runs", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    zoo = build_zoo()
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["EDGESHIP_CACHE"] = cache
        with LocalTarget() as target:
            files = [f"{n}.{ext}" for n in ("mlp", "cnn") for ext in ("onnx", "tflite")]
            for name in [f for f in files if zoo.path(f).is_file()]:
                config = TuneConfig(
                    policy=MeasurePolicy(warmup=5, runs=args.runs), rounds=args.rounds
                )
                report = tune(zoo.path(name), target, config)
                best = report.best
                pick = SessionOptions(
                    threads=best.threads,
                    providers=tuple(best.providers),
                    execution_mode=best.execution_mode,
                )
                again = measure_models(
                    target,
                    {name: zoo.path(name)},
                    MeasurePolicy(warmup=20, runs=args.confirm_runs),
                    args.rounds,
                    {"default": SessionOptions(), "pick": pick},
                )
                confirm = {m.setting: m.p50_ms for m in again}
                rows.append(
                    {
                        "model": name,
                        "profile": report.profile,
                        "candidates": len(report.trials),
                        "pick": best.label(),
                        "tuner_default_p50_ms": report.default.p50_ms,
                        "tuner_pick_p50_ms": best.p50_ms,
                        "tuner_gain": report.gain,
                        "confirm_default_p50_ms": confirm["default"],
                        "confirm_pick_p50_ms": confirm["pick"],
                        "confirm_gain": confirm["default"] / confirm["pick"],
                    }
                )
    print(
        f"{'model':12} {'n':>2} {'pick':44} {'default':>9} {'pick':>9} {'gain':>6} | "
        f"{'default':>9} {'pick':>9} {'gain':>6}"
    )
    print(f"{'':12} {'':>2} {'':44} {'(tuner, p50 ms)':>26} | {'(re-measured)':>26}")
    for r in rows:
        print(
            f"{r['model']:12} {r['candidates']:2d} {r['pick']:44} "
            f"{r['tuner_default_p50_ms']:9.4f} {r['tuner_pick_p50_ms']:9.4f} "
            f"{r['tuner_gain']:5.2f}x | {r['confirm_default_p50_ms']:9.4f} "
            f"{r['confirm_pick_p50_ms']:9.4f} {r['confirm_gain']:5.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
