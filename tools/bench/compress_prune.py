"""Pruning benchmark: structured (channels/neurons) and unstructured (weights), zoo CNN and
MLP, fine-tuned on the digits training split, measured side by side against the base.

Targets: 50 % channel pruning + fine-tuning ≥ 1.6× faster at batch 1 with an accuracy drop
≤ 1 pt. Unstructured 80 % + fine-tuning: drop ≤ 1 pt and the deflated file ≤ 0.45× (ONNX
Runtime runs the zeros densely, so no speed-up is expected or claimed).

Usage: ``python tools/bench/compress_prune.py [--epochs 5] [--threads 1] [--rounds 7]``
"""

from __future__ import annotations

import sys
from pathlib import Path

from compress_common import measure, parser, report, zoo  # type: ignore[import-not-found]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default 5)")
    ns = p.parse_args(argv)
    from edgeship.compress import (
        ChannelPruneConfig,
        CompressOptions,
        PruneConfig,
        TrainConfig,
        compress,
        load_dataset,
    )
    from edgeship.compress.train.torch_model import TorchModel

    manifest = zoo()
    train = load_dataset(manifest.path("digits_train.npz"))
    test = load_dataset(manifest.path("digits_test.npz"))
    assert train is not None and test is not None
    ns.out.mkdir(parents=True, exist_ok=True)
    tune = TrainConfig(epochs=ns.epochs, lr=1e-3)
    quick = CompressOptions(latency_rounds=1, latency_runs=50)
    structured = {"speedup": (1.6, ">=", 0), "drop_pt": (1.0, "<=", 0)}
    unstructured = {"drop_pt": (1.0, "<=", 0), "deflated_ratio": (0.45, "<=", 0)}
    jobs = []
    for name in ("cnn", "mlp"):
        onnx_file = manifest.path(f"{name}.onnx")
        torch_model = TorchModel(f"tools.zoo.models:{name}", manifest.path(f"{name}.pt"))
        jobs += [
            (
                name,
                "channels 50% torch-pruning",
                torch_model,
                ChannelPruneConfig(0.5, fine_tune=tune),
                structured,
            ),
            (
                name,
                "channels 50% onnx surgery",
                onnx_file,
                ChannelPruneConfig(0.5, fine_tune=tune),
                structured,
            ),
            (name, "weights 50% magnitude", onnx_file, PruneConfig(0.5), {}),
            (
                name,
                "weights 80% magnitude+ft",
                onnx_file,
                PruneConfig(0.8, fine_tune=tune),
                unstructured,
            ),
            (
                name,
                "weights ≤0.5pt budget",
                onnx_file,
                PruneConfig(0.95, accuracy_budget_pt=0.5),
                {},
            ),
        ]
    lines = []
    for i, (name, variant, model, config, targets) in enumerate(jobs):
        out = ns.out / f"{name}.prune{i}.onnx"
        data = train if config.importance != "magnitude" or config.fine_tune.epochs else test
        if getattr(config, "accuracy_budget_pt", None) is not None:
            data = train  # the sweep is judged on training data, the table on the test split
        record = compress(model, config, data, out, quick).report
        line = measure(name, variant, Path(record.base.path), out, test, ns)
        line.targets = targets
        lines.append(line)
    return report(lines, ns)


if __name__ == "__main__":
    sys.exit(main())
