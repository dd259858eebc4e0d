"""An estimate with its uncertainty: a share of samples (top-1 agreement, accuracy) is a
binomial proportion, given with its sample count and a Wilson score interval.

The one home of :class:`Interval`, :func:`wilson` and the way a share is printed
(:func:`share_text`: ``top-1 agreement 100 % [93.0, 100] n=51``), so that compression,
conversion, A/B and sweep reports say the same thing the same way. Pure functions.

Words: *accuracy* is a share of samples whose top-1 class is their label; *agreement* a
share of samples whose top-1 class is the base's (or the source's). Fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "CONFIDENCE",
    "Interval",
    "percent",
    "share_interval",
    "share_text",
    "width_pp",
    "wilson",
]

CONFIDENCE = 0.95
"""The level of every interval of a share that a report does not set otherwise."""


@dataclass
class Interval:
    """A two-sided confidence interval (of a ratio, a fraction, ...)."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion ``successes / n`` (sound near 0 and 1,
    unlike the Wald one: 51 of 51 gives [0.930, 1], not [1, 1])."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} not in [0, {n}]")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def share_interval(value: float | None, n: int, confidence: float = CONFIDENCE) -> Interval | None:
    """The Wilson interval of a share ``value`` of ``n`` samples (a fraction that is a
    whole number of them); None without a value or samples."""
    if value is None or n <= 0:
        return None
    return wilson(min(n, max(0, round(value * n))), n, confidence)


def percent(fraction: float) -> str:
    """``96.7``, ``100``, ``0``: one decimal, more only where one would round a share
    that is not whole (or nil) to 100.0 (or 0.0); no sign."""
    if fraction >= 1.0:
        return "100"
    if fraction <= 0.0:
        return "0"
    for digits in (1, 2, 3):
        text = f"{100 * fraction:.{digits}f}"
        if float(text) not in (0.0, 100.0):
            return text
    return text


def share_text(value: float, n: int | None, ci: Interval | None = None) -> str:
    """``100 % [93.0, 100] n=51``: a share with its interval (Wilson at 95 % unless
    ``ci`` is given) and its sample count; without a count (a record written before
    counts were kept, a figure that is no estimate) the bare share, ``100 %``."""
    if not n:
        return f"{percent(value)} %"
    ci = ci if ci is not None else share_interval(value, n)
    bounds = "" if ci is None else f" [{percent(ci.low)}, {percent(ci.high)}]"
    return f"{percent(value)} %{bounds} n={n}"


def width_pp(ci: Interval) -> float:
    """How wide an interval of a fraction is, in percentage points."""
    return 100.0 * (ci.high - ci.low)
