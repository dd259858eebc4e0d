"""The one interleaved latency loop: order, discarded rounds, per-entry reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeship.core.config import ProfileConfig
from edgeship.optimize.bench import interleaved, median_p50_ms


class Report:
    """Just what the loop's callers read."""

    def __init__(self, p50: float) -> None:
        self.latency_ms = type("Stats", (), {"p50": p50})()


def test_rounds_alternate_the_order_and_drop_the_discarded_ones() -> None:
    calls: list[str] = []

    def profile(model: Path, config: ProfileConfig) -> Any:
        calls.append(model.name)
        return Report(float(len(calls)))

    entries = [
        (Path("a"), ProfileConfig()),
        (Path("b"), ProfileConfig()),
        (Path("c"), ProfileConfig()),
    ]
    per_entry = interleaved(profile, entries, rounds=2, discard=1)
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    # the first round (calls 1-3) is dropped; each entry keeps its own two reports
    assert [[r.latency_ms.p50 for r in reports] for reports in per_entry] == [
        [6.0, 7.0],
        [5.0, 8.0],
        [4.0, 9.0],
    ]
    assert median_p50_ms(per_entry[0]) == 6.5
