"""Distillation benchmark: the zoo CNN teaches (a) a copy of itself at a quarter of the width
(graph surgery on the ONNX file, then KL + CE training) and (b) the zoo MLP architecture from
scratch; (c) the same MLP trained on labels alone (alpha 0) is the control.

Targets: the quarter-width student keeps the drop ≤ 1 pt at ≤ 0.1× the parameters and is
faster; the distilled MLP is at least as accurate as the label-only control (reported as
the drop against the CNN teacher).

Usage: ``python tools/bench/compress_distill.py [--epochs 30] [--threads 1] [--rounds 7]``
"""

from __future__ import annotations

import sys
from pathlib import Path

from compress_common import measure, parser, report, zoo  # type: ignore[import-not-found]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    ns = p.parse_args(argv)
    from edgeship.compress import CompressOptions, DistillConfig, TrainConfig, distill, load_dataset

    manifest = zoo()
    train = load_dataset(manifest.path("digits_train.npz"))
    test = load_dataset(manifest.path("digits_test.npz"))
    assert train is not None and test is not None
    ns.out.mkdir(parents=True, exist_ok=True)
    teacher = manifest.path("cnn.onnx")
    quick = CompressOptions(latency_rounds=1, latency_runs=50)
    kd = TrainConfig(epochs=ns.epochs, lr=2e-3, alpha=0.7, temperature=4.0, val_fraction=0.1)
    ce = TrainConfig(epochs=ns.epochs, lr=2e-3, alpha=0.0, val_fraction=0.1)
    jobs = [
        ("cnn/4 distilled", DistillConfig(width=0.25, train=kd)),
        ("mlp distilled", DistillConfig(student="tools.zoo.models:mlp", train=kd)),
        ("mlp labels only", DistillConfig(student="tools.zoo.models:mlp", train=ce)),
    ]
    lines = []
    for i, (variant, config) in enumerate(jobs):
        out = ns.out / f"cnn.distill{i}.onnx"
        record = distill(teacher, config, train, out, quick).report
        lines.append(measure("cnn", variant, Path(record.base.path), out, test, ns))
    lines[0].targets = {"drop_pt": (1.0, "<=", 0), "speedup": (1.0, ">=", 0)}
    if lines[1].acc < lines[2].acc:
        lines[1].targets = {"drop_pt": (lines[2].drop_pt, "<=", 0)}
    return report(lines, ns)


if __name__ == "__main__":
    sys.exit(main())
