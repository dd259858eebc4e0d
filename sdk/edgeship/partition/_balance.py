"""Where to cut a sequence of costed nodes into K contiguous stages (pure functions).

The pipeline runs as fast as its slowest stage, so the cuts minimise the largest stage
cost (the classic linear-partition problem, solved exactly by dynamic programming).
Among cuts whose largest stage stays within ``slack`` of that optimum, the one moving
the fewest bytes across stage boundaries wins: transfers between stages cost time too.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["balanced_cuts", "bottleneck", "stage_costs"]


def bottleneck(costs: Sequence[float], k: int) -> float:
    """The smallest possible largest-stage cost of ``k`` non-empty contiguous stages."""
    _check(costs, k)
    prefix = np.concatenate([[0.0], np.cumsum(np.asarray(costs, dtype=np.float64))])
    n = len(costs)
    best = prefix[1:].copy()  # one stage: nodes [0, j)
    for stages in range(2, k + 1):
        nxt = np.full(n, np.inf)
        for j in range(stages - 1, n):  # stage ends after node j
            i = np.arange(stages - 2, j)  # previous stage ends after node i
            nxt[j] = np.min(np.maximum(best[i], prefix[j + 1] - prefix[i + 1]))
        best = nxt
    return float(best[n - 1])


def balanced_cuts(
    costs: Sequence[float],
    k: int,
    crossing: Sequence[float] | None = None,
    slack: float = 0.0,
) -> list[int]:
    """Cut positions ``c_1 < ... < c_{k-1}``: stage s holds nodes ``[c_s, c_{s+1})``.

    ``crossing[p]`` is the cost of a cut before node ``p`` (bytes live across it; index 0
    unused). The largest stage stays within ``(1 + slack)`` of :func:`bottleneck`; among
    such cuts the total crossing cost is the least (ties: earliest cuts).
    """
    _check(costs, k)
    n = len(costs)
    if k == 1:
        return []
    limit = bottleneck(costs, k) * (1.0 + slack) + 1e-9 * max(1.0, float(np.sum(costs)))
    prefix = np.concatenate([[0.0], np.cumsum(np.asarray(costs, dtype=np.float64))])
    cross = np.zeros(n + 1) if crossing is None else np.asarray(crossing, dtype=np.float64)
    if len(cross) < n:
        raise ValueError(f"crossing needs {n} entries, got {len(cross)}")
    # total[s][j]: least crossing cost of s+1 stages covering nodes [0, j] within the limit
    total = np.where(prefix[1:] <= limit, 0.0, np.inf)
    choices: list[np.ndarray] = []
    for s in range(1, k):
        nxt = np.full(n, np.inf)
        arg = np.full(n, -1)
        for j in range(s, n):
            i = np.arange(s - 1, j)  # previous stages end after node i; this one is (i, j]
            ok = (prefix[j + 1] - prefix[i + 1]) <= limit
            score = np.where(ok, total[i] + cross[i + 1], np.inf)
            pick = int(np.argmin(score))
            nxt[j], arg[j] = score[pick], i[pick]
        total = nxt
        choices.append(arg)
    cuts, end = [], n - 1
    for arg in reversed(choices):
        end = int(arg[end])
        cuts.append(end + 1)
    return sorted(cuts)


def stage_costs(costs: Sequence[float], cuts: Sequence[int]) -> list[float]:
    bounds = [0, *cuts, len(costs)]
    return [float(sum(costs[a:b])) for a, b in itertools.pairwise(bounds)]


def _check(costs: Sequence[float], k: int) -> None:
    if k < 1:
        raise ValueError(f"need at least one stage, got {k}")
    if k > len(costs):
        raise ValueError(f"{k} stages need at least {k} nodes, got {len(costs)}")
    if any(c < 0 for c in costs):
        raise ValueError("costs must be >= 0")
