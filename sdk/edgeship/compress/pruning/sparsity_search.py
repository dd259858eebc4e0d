"""The sparsity search of structured pruning: the largest sparsity, up to the one asked,
that holds the model (what NNCF's accuracy-aware pruning does against labels, done with
edgeship's own judgement of every output, so that it needs none).

1. the sparsity asked (the ceiling) is pruned, and fine-tuned when asked, and judged on
   the job's *search* inputs (rows of the data that the final judgement never sees, else
   inputs generated with other seeds), every output by its kind at the guard's
   thresholds with margin, as the INT8 fallback judges (:mod:`edgeship.compress._search`);
   when it holds, it is kept after one try;
2. else the sparsity is halved until one holds, then bisected between the last that
   collapsed and the largest that held, :data:`MAX_TRIES` prunings in all;
3. the largest that held is kept and the report says so in a note and its details
   (``sparsity_search``); when none held, the ceiling's result stays, for the guard to
   refuse with what was tried.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgeship.compress import _evaluate as evaluate
from edgeship.compress._search import judged, with_margin, worst_figure
from edgeship.compress.config import ChannelPruneConfig, PruneConfig
from edgeship.compress.methods import Job, Outcome
from edgeship.core.errors import UsageError
from edgeship.models import stats

__all__ = ["MAX_TRIES", "Prune", "SparsitySearch", "Try", "pruned"]

MAX_TRIES = 4
"""Prunings (each fine-tuned when asked) one search may make, the ceiling's included."""

Prune = Callable[[float, Path], Outcome]
"""``(sparsity, out)``: prune the job's base at that sparsity (and fine-tune it) into
``out``; its outcome."""


@dataclass(frozen=True)
class Try:
    """One sparsity tried: what collapsed on the search inputs ("" when it held) and the
    worst output's figures."""

    sparsity: float
    collapsed: str
    figure: str

    @property
    def held(self) -> bool:
        return not self.collapsed

    def text(self) -> str:
        return f"{self.sparsity:g} {'holds' if self.held else 'collapsed'}"


@dataclass(frozen=True)
class SparsitySearch:
    """What the search did: the sparsity asked (the ceiling), the one kept (the
    ceiling when none held), each try in order, and what it judged on."""

    asked: float
    kept: float
    tries: tuple[Try, ...]
    searched_on: str

    @property
    def held(self) -> bool:
        return any(t.held for t in self.tries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "kept": self.kept,
            "searched_on": self.searched_on,
            "tries": [
                {"sparsity": t.sparsity, "collapsed": t.collapsed, "figure": t.figure}
                for t in self.tries
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SparsitySearch:
        tries = tuple(Try(t["sparsity"], t["collapsed"], t["figure"]) for t in data["tries"])
        return cls(data["asked"], data["kept"], tries, data["searched_on"])

    @property
    def tried(self) -> str:
        """Each try, for a note or a refusal's line."""
        n = len(self.tries)
        return f"{n} {'try' if n == 1 else 'tries'} ({', '.join(t.text() for t in self.tries)})"

    @property
    def refusal(self) -> str:
        """What the search did, for the line of a refusal that follows it."""
        if not self.held:
            return (
                f"the sparsity search found no sparsity up to {self.asked:g} that holds on "
                f"{self.searched_on}: {self.tried}"
            )
        return f"the sparsity search's {self.kept:g} held on {self.searched_on}, not on these"

    @property
    def note(self) -> str:
        first = self.tries[0]
        if first.held:
            return (
                f"sparsity search: {self.asked:g} holds on {self.searched_on} "
                f"({first.figure}); {self.tried}"
            )
        if not self.held:
            return (
                f"sparsity search: no sparsity up to {self.asked:g} holds on "
                f"{self.searched_on} ({self.tried}); the {self.asked:g} asked is kept for the "
                f"final judgement ({first.collapsed})"
            )
        kept = next(t for t in self.tries if t.sparsity == self.kept)
        return (
            f"sparsity search: {self.asked:g} collapsed on {self.searched_on} "
            f"({first.collapsed}); {self.kept:g} holds ({kept.figure}) and is kept, not "
            f"the {self.asked:g} asked; {self.tried}"
        )


def pruned(job: Job[ChannelPruneConfig] | Job[PruneConfig], prune: Prune) -> Outcome:
    """``prune`` at the job's sparsity into ``job.out``; with the search on, at the
    largest sparsity up to it that holds (:mod:`this module <.sparsity_search>`). The
    details say the sparsity the result has (``sparsity``)."""
    config = job.config
    if not config.sparsity_search:
        outcome = prune(config.sparsity, job.out)
        outcome.details["sparsity"] = config.sparsity
        return outcome
    if job.search is None:
        raise UsageError(
            f"the sparsity search runs on {config.method} alone, not as a step of a chain: "
            "give --sparsity without --sparsity-search there"
        )
    search = replace(job.search, policy=with_margin(job.search.policy))
    expected = evaluate.predict_feeds(job.base, search.calls)
    outcomes: dict[float, Outcome] = {}
    tries: list[Try] = []
    with tempfile.TemporaryDirectory(prefix="edgeship-sparsity-") as tmp:

        def path(sparsity: float) -> Path:
            return Path(tmp) / f"{sparsity:g}{job.out.suffix}"

        before = stats.model_stats(job.base)
        for sparsity in _schedule(config.sparsity, tries):
            outcomes[sparsity] = prune(sparsity, path(sparsity))
            if not _removed(before, stats.model_stats(path(sparsity))):
                tries.append(Try(sparsity, "it removes nothing", ""))
                break  # a lower sparsity removes nothing either
            reasons, verdicts = judged(expected, path(sparsity), search)
            tries.append(Try(sparsity, "; ".join(reasons), worst_figure(verdicts)))
        held = [t.sparsity for t in tries if t.held]
        kept = max(held, default=config.sparsity)
        shutil.copyfile(path(kept), job.out)
    done = SparsitySearch(config.sparsity, kept, tuple(tries), search.described)
    outcome = outcomes[kept]
    outcome.details["sparsity"] = kept
    outcome.details["sparsity_search"] = done.to_dict()
    outcome.notes.insert(0, done.note)
    return outcome


def _removed(before: stats.ModelStats, after: stats.ModelStats) -> bool:
    """Whether pruning removed something: parameters (channels) or nonzero weights."""
    return after.parameters < before.parameters or (
        after.nonzero_parameters < before.nonzero_parameters
    )


def _schedule(ceiling: float, tries: list[Try]) -> Iterator[float]:
    """The sparsities to try, each chosen after the tries before it (``tries``, filled
    in by the caller): the ceiling, halved until one holds, then bisected between the
    last that collapsed and the largest that held."""
    sparsity = ceiling
    while len(tries) < MAX_TRIES:
        yield sparsity
        held = [t.sparsity for t in tries if t.held]
        collapsed = [t.sparsity for t in tries if not t.held]
        if not held:
            sparsity = round(sparsity / 2, 6)
        elif not collapsed:
            return  # the ceiling holds
        else:
            sparsity = round((max(held) + min(c for c in collapsed if c > max(held))) / 2, 6)
