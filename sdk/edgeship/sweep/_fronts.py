"""Pareto fronts of a sweep, per board and across boards (pure; the front itself is
:func:`edgeship.ab.pareto.front`).

On one board every done cell is a point (its variant's median latency, size, peak memory,
on-device accuracy), with the base as one more point (its median over the board's cells:
each cell's A/B measured it afresh). Across boards latencies are not comparable, so a
variant's point is relative: the geometric mean of its speedups, its size, the geometric
mean of its memory ratios and the mean of its accuracy drops; the base is speedup 1,
ratio 1, drop 0. A variant both slower and larger than the base is never on a front
(:func:`edgeship.ab.pareto.slower_and_larger`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from edgeship.ab.pareto import Objective, front, slower_and_larger
from edgeship.sweep._report import AcrossBoards, BoardFront, Cell, FleetFront, VariantRecord

__all__ = [
    "ACCURACY",
    "ACCURACY_DROP",
    "BASE",
    "LATENCY",
    "MEMORY",
    "MEMORY_RATIO",
    "SIZE",
    "SPEEDUP",
    "Point",
    "across_boards",
    "board_front",
]

BASE = "base"

LATENCY = Objective("p50_ms", minimize=True)
SIZE = Objective("size_bytes", minimize=True)
MEMORY = Objective("peak_rss_mb", minimize=True)
ACCURACY = Objective("accuracy", minimize=False)
SPEEDUP = Objective("speedup_geomean", minimize=False)
MEMORY_RATIO = Objective("memory_ratio_geomean", minimize=True)
ACCURACY_DROP = Objective("accuracy_drop_pp_mean", minimize=True)

Point = dict[str, float | None]


def board_front(board: str, cells: Sequence[Cell]) -> BoardFront:
    """The front on ``board`` over its done cells and the base."""
    done = [c for c in cells if c.board == board and c.result is not None]
    failed = sum(1 for c in cells if c.board == board and not c.ok)
    if not done:
        return BoardFront(board, [], [], None, 0, failed)
    results = [c.result for c in done if c.result is not None]
    base: Point = {
        "p50_ms": statistics.median(r.base_p50_ms for r in results),
        "size_bytes": float(results[0].base_size_bytes),
        "peak_rss_mb": _median([r.base_peak_rss_mb for r in results]),
        "accuracy": _median([r.base_accuracy for r in results]),
    }
    points: dict[str, Point] = {BASE: base}
    for c, r in zip(done, results, strict=True):
        points[c.variant] = {
            "p50_ms": r.p50_ms,
            "size_bytes": float(r.size_bytes),
            "peak_rss_mb": r.peak_rss_mb,
            "accuracy": r.accuracy,
        }
    objectives = _present([LATENCY, SIZE], [MEMORY, ACCURACY], points.values())
    names = [
        n
        for n in _front(points, objectives)
        if not slower_and_larger(
            float(points[n]["p50_ms"] or 0.0),
            float(points[n]["size_bytes"] or 0.0),
            float(base["p50_ms"] or 0.0),
            float(base["size_bytes"] or 0.0),
        )
    ]
    return BoardFront(board, [o.name for o in objectives], names, base["p50_ms"], len(done), failed)


def across_boards(
    boards: Sequence[str], variants: Sequence[VariantRecord], cells: Sequence[Cell]
) -> FleetFront:
    """The front across boards (see the module doc); a variant lacking a done cell on a
    board that has any is listed in ``excluded`` instead."""
    measured = [b for b in boards if any(c.board == b and c.ok for c in cells)]
    points: list[AcrossBoards] = []
    excluded: list[str] = []
    base_size = next((c.result.base_size_bytes for c in cells if c.result is not None), None)
    for variant in variants:
        mine = {c.board: c.result for c in cells if c.variant == variant.name and c.result}
        if not measured or any(b not in mine for b in measured):
            excluded.append(variant.name)
            continue
        results = [mine[b] for b in measured]
        speedups = [r.speedup for r in results]
        points.append(
            AcrossBoards(
                variant=variant.name,
                boards=len(results),
                speedup_geomean=_geomean(speedups),
                speedup_min=min(speedups),
                speedup_max=max(speedups),
                size_bytes=variant.size_bytes,
                memory_ratio_geomean=_geomean_or_none([r.memory_ratio for r in results]),
                accuracy_drop_pp_mean=_mean_or_none([r.accuracy_drop_pp for r in results]),
            )
        )
    if not points or base_size is None:
        return FleetFront([], points, [], excluded)
    table: dict[str, Point] = {
        BASE: {
            "speedup_geomean": 1.0,
            "size_bytes": float(base_size),
            "memory_ratio_geomean": 1.0,
            "accuracy_drop_pp_mean": 0.0,
        }
    }
    for p in points:
        table[p.variant] = {
            "speedup_geomean": p.speedup_geomean,
            "size_bytes": float(p.size_bytes),
            "memory_ratio_geomean": p.memory_ratio_geomean,
            "accuracy_drop_pp_mean": p.accuracy_drop_pp_mean,
        }
    objectives = _present([SPEEDUP, SIZE], [MEMORY_RATIO, ACCURACY_DROP], table.values())
    slow_and_large = {
        p.variant
        for p in points
        if p.speedup_geomean > 0
        and slower_and_larger(1.0 / p.speedup_geomean, p.size_bytes, 1.0, base_size)
    }
    names = [n for n in _front(table, objectives) if n not in slow_and_large]
    return FleetFront([o.name for o in objectives], points, names, excluded)


def _present(
    always: list[Objective], optional: list[Objective], points: Iterable[Point]
) -> list[Objective]:
    """``always``, plus each optional objective that every point has a value for."""
    rows = list(points)
    return always + [o for o in optional if all(p.get(o.name) is not None for p in rows)]


def _front(points: dict[str, Point], objectives: Sequence[Objective]) -> list[str]:
    names = list(points)
    values = [[float(points[n][o.name] or 0.0) for o in objectives] for n in names]
    return [names[i] for i in front(values, objectives)]


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else math.nan


def _geomean_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None and v > 0]
    return _geomean(known) if known and len(known) == len(values) else None


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None
