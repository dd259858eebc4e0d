"""Shared by the compression benchmarks: the zoo, side-by-side measurement, target checks.

Latency is batch-1 p50 on the ``local`` target (the edgeship runtime in a subprocess, ONNX
Runtime with 1 thread unless ``--threads``), base and variant alternating over several
rounds, so that a noisy shared machine slows both alike. Accuracy is on the digits test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # script mode: python tools/bench/compress_*.py
    sys.path.insert(0, str(REPO_ROOT))


@dataclass
class Line:
    """One variant against its base, measured in the same run."""

    model: str
    variant: str
    base_kb: float
    size_kb: float
    deflated_ratio: float
    base_params: int
    params: int
    sparsity: float
    base_acc: float
    acc: float
    base_ms: float | None = None
    ms: float | None = None
    targets: dict[str, tuple[float, str, float]] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        return None if not self.ms or self.base_ms is None else self.base_ms / self.ms

    @property
    def drop_pt(self) -> float:
        return 100.0 * (self.base_acc - self.acc)

    def check(self) -> list[str]:
        """Missed targets, as sentences."""
        missed = []
        values = {
            "speedup": self.speedup or 0.0,
            "size_ratio": self.size_kb / self.base_kb,
            "drop_pt": self.drop_pt,
            "deflated_ratio": self.deflated_ratio,
        }
        for name, (limit, op, _) in self.targets.items():
            got = values[name]
            ok = got >= limit if op == ">=" else got <= limit
            if not ok:
                missed.append(f"{self.model}/{self.variant}: {name} {got:.3f}, target {op} {limit}")
        return missed


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--threads", type=int, default=1, help="runtime threads (default 1)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--runs", type=int, default=500, help="timed runs per round (default 500)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "edgeship-bench",
        help="where models are written (default: <tmp>/edgeship-bench)",
    )
    p.add_argument("--json", type=Path, help="also write the lines as JSON here")
    return p


def zoo() -> Any:
    from tools.zoo.build import build_zoo

    return build_zoo()


def measure(
    model: str,
    variant: str,
    base: Path,
    out: Path,
    test: Any,
    ns: argparse.Namespace,
    latency: bool = True,
) -> Line:
    from edgeship.compress import _evaluate as evaluate
    from edgeship.models import stats

    lat = evaluate.latency(base, out, "local", ns.threads, ns.rounds, ns.runs) if latency else None
    b, m = stats.model_stats(base), stats.model_stats(out)
    acc_b = evaluate.accuracy(evaluate.predict(base, test), test.labels)
    acc_m = evaluate.accuracy(evaluate.predict(out, test), test.labels)
    line = Line(
        model,
        variant,
        b.size_bytes / 1024,
        m.size_bytes / 1024,
        m.compressed_size_bytes / b.compressed_size_bytes,
        b.parameters,
        m.parameters,
        m.sparsity,
        float(acc_b or 0.0),
        float(acc_m or 0.0),
    )
    if lat is not None:
        line.base_ms, line.ms = lat.base_p50_ms, lat.model_p50_ms
    return line


def report(lines: list[Line], ns: argparse.Namespace) -> int:
    """Print the table and the verdicts; the exit status (1 if any target was missed)."""
    head = (
        f"{'model':5} {'variant':26} {'KB':>7} {'ratio':>6} {'defl.':>6} {'params':>8} "
        f"{'sparse':>6} {'acc %':>6} {'drop':>6} {'base ms':>8} {'ms':>8} {'speedup':>7}"
    )
    print(head)
    print("-" * len(head))
    for x in lines:
        lat = (
            f"{x.base_ms:8.4f} {x.ms:8.4f} {x.speedup:6.2f}×"
            if x.ms is not None
            else f"{'-':>8} {'-':>8} {'-':>7}"
        )
        print(
            f"{x.model:5} {x.variant:26} {x.size_kb:7.1f} {x.size_kb / x.base_kb:6.3f} "
            f"{x.deflated_ratio:6.3f} {x.params:8,} {x.sparsity:6.1%} {100 * x.acc:6.2f} "
            f"{x.drop_pt:+6.2f} {lat}"
        )
    missed = [m for x in lines for m in x.check()]
    print(
        f"(batch 1, {ns.threads} thread(s), p50 = median of {ns.rounds} interleaved rounds "
        f"of {ns.runs} runs; accuracy on the digits test split; drop in points)"
    )
    if ns.json:
        import json

        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(
            json.dumps([{**x.__dict__, "speedup": x.speedup} for x in lines], indent=2)
        )
    for m in missed:
        print(f"TARGET MISSED: {m}")
    if not missed:
        print("all targets met")
    return 1 if missed else 0


WIDE_CHANNELS = 128


def wide_cnn() -> Any:
    """The zoo CNN's layout at 128 channels (≈ 20 MMAC/image): compute-bound at batch 1,
    where the zoo CNN (≈ 80 µs) is dominated by per-node overhead. A proposal for the zoo."""
    import torch
    from torch import nn

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    c = WIDE_CHANNELS
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            *block(1, c),
            *block(c, c),
            *block(c, c),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c * 16, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )


def train_wide(out: Path, train: Any, epochs: int = 3) -> Path:
    """Train :func:`wide_cnn` on the digits (seeded, Adam) and export it to ONNX once."""
    if out.is_file():
        return out
    import torch

    from edgeship.compress.config import TrainConfig
    from edgeship.compress.training.loop import fit
    from edgeship.compress.training.torch_model import export_onnx

    torch.manual_seed(0)
    model = wide_cnn()
    fit(model, train, None, TrainConfig(epochs=epochs, lr=1e-3, batch_size=32))
    out.parent.mkdir(parents=True, exist_ok=True)
    return export_onnx(model.eval(), train.take(2).feeds, out, train.names)
