"""The inputs a method's own search judges its tries on, and the judgement: shared by
the INT8 fallback (:mod:`.quantization.fallback`) and the sparsity search of structured
pruning (:mod:`.pruning.sparsity_search`), so that both hold a try to the same rules.

The inputs are rows the final judgement never sees (or inputs generated with other
seeds); the thresholds are the guard's with a margin (:func:`with_margin`), since a try
that barely holds on the search rows may not on the held-out ones; every output is
judged by its kind, and the worst decides.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from edgeship.compress import _evaluate as evaluate
from edgeship.compress import guard
from edgeship.compress.guard import GuardPolicy
from edgeship.models.kinds import Limits, OutputVerdict, judge_outputs, worst

__all__ = ["Calls", "Judged", "Search", "health", "judged", "with_margin", "worst_figure"]

Calls = list[dict[str, np.ndarray]]


@dataclass(frozen=True)
class Search:
    """The inputs a search judges on (one dict per call, never the held-out ones), the
    guard's thresholds, and a phrase saying what the inputs are."""

    calls: Calls
    policy: GuardPolicy
    described: str


def with_margin(policy: GuardPolicy) -> GuardPolicy:
    """The guard's thresholds with half the loss they allow (a floor ``x`` of a figure
    at most 1 becomes ``1 - (1 - x) / 2``, a ceiling ``x`` becomes ``x / 2``): a model that
    barely holds on the search rows may not on held-out ones (PaddleOCR's recogniser held
    cosine 0.9 on the search rows and gave 0.893 on the held-out ones)."""
    limits = policy.limits
    halved = {
        f.name: (1 - (1 - value) / 2) if f.name.startswith("min_") else value / 2
        for f in fields(Limits)
        for value in [getattr(limits, f.name)]
    }
    return replace(policy, limits=Limits(**halved))


Judged = tuple[list[str], list[OutputVerdict]]


def judged(expected: evaluate.Outputs, path: Path, search: Search) -> Judged:
    """``path`` run on the search inputs once against the base's outputs ``expected``:
    what collapsed (the guard's reasons at the search's thresholds, any output; empty: it
    holds) and every output's verdict."""
    got = evaluate.predict_feeds(path, search.calls)
    policy = search.policy
    verdicts = judge_outputs(expected, got, policy.output_kinds, policy.limits)
    return guard.collapse_reasons(verdicts, None, policy), verdicts


def worst_figure(verdicts: list[OutputVerdict]) -> str:
    """The worst output's figures (what a try held or collapsed at)."""
    v = worst(verdicts)
    if v is None:
        return ""
    return v.figures() if len(verdicts) == 1 else f"worst output {v.label}: {v.figures()}"


def health(verdicts: list[OutputVerdict]) -> float:
    """How far the worst output is inside its bounds (1 on them, below 1 past them)."""
    v = worst(verdicts)
    return 1.0 if v is None else v.health
