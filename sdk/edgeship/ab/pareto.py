"""The Pareto front over latency, size, memory and accuracy against labels (pure).

A variant both slower and larger than its base is never on a front, whatever else it
offers (less memory, a tie on accuracy): it is no way to deploy that model
(:func:`slower_and_larger`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edgeship.ab.result import ModelResult

__all__ = [
    "ACCURACY",
    "LATENCY",
    "MEMORY",
    "SIZE",
    "Objective",
    "dominates",
    "front",
    "model_front",
    "model_objectives",
    "model_point",
    "slower_and_larger",
]


@dataclass(frozen=True)
class Objective:
    """A figure of a point (``name``), which way is better, and how a report names it."""

    name: str
    minimize: bool
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " "))


LATENCY = Objective("p50_ms", minimize=True, label="latency")
SIZE = Objective("size_bytes", minimize=True, label="size")
MEMORY = Objective("peak_rss_mb", minimize=True, label="memory")
ACCURACY = Objective("accuracy", minimize=False, label="accuracy vs labels")


def dominates(a: Sequence[float], b: Sequence[float], objectives: Sequence[Objective]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, objective in zip(a, b, objectives, strict=True):
        if objective.minimize:
            x, y = -x, -y
        if x < y:
            return False
        better = better or x > y
    return better


def front(points: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> list[int]:
    """Indices of the points no other point dominates, in input order (equal points
    both stay on the front)."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, objectives) for j, q in enumerate(points) if j != i)
    ]


def model_objectives(models: Sequence[ModelResult]) -> list[Objective]:
    """Latency and size always; memory and accuracy when every model has them."""
    objectives = [LATENCY, SIZE]
    if all(m.memory is not None for m in models):
        objectives.append(MEMORY)
    if all(m.accuracy is not None for m in models):
        objectives.append(ACCURACY)
    return objectives


def model_point(model: ModelResult, objectives: Sequence[Objective]) -> list[float]:
    values = {
        "p50_ms": model.latency.p50_ms,
        "size_bytes": float(model.size_bytes),
        "peak_rss_mb": model.memory.peak_rss_mb if model.memory else float("nan"),
        "accuracy": model.accuracy.accuracy if model.accuracy else float("nan"),
    }
    return [values[o.name] for o in objectives]


def slower_and_larger(
    p50_ms: float, size_bytes: float, base_p50_ms: float, base_size: float
) -> bool:
    """Whether a variant is both slower and larger than its base: never recommended."""
    return p50_ms > base_p50_ms and size_bytes > base_size


def model_front(models: Sequence[ModelResult]) -> list[str]:
    """Names of the models on the front; the first model is the base, and a variant both
    slower and larger than it is never on the front."""
    objectives = model_objectives(models)
    points = [model_point(m, objectives) for m in models]
    base = models[0] if models else None
    return [
        models[i].name
        for i in front(points, objectives)
        if base is None
        or i == 0
        or not slower_and_larger(
            models[i].latency.p50_ms,
            models[i].size_bytes,
            base.latency.p50_ms,
            base.size_bytes,
        )
    ]
