"""Guards against a silent wrong result: a collapsed model, a no-op, a larger "compressed" one.

Pure functions over the verdicts of the produced model's outputs against the base's on
the same inputs (held-out data, or inputs generated at the model's real shape) and over
the produced graph's weights; :func:`~edgeship.compress.compress` raises what they find.

A *collapse* is any output (or part of a packed one) that collapsed by the rules of its
kind (:mod:`edgeship.models.kinds`: values no longer finite, constant where the base's
vary, and the figures of its kind: top-1 agreement, cosine and scale for class scores,
relative L2 for boxes, row cosine and nearest-neighbour agreement for embeddings, ...),
with labels an accuracy drop beyond :attr:`GuardPolicy.max_drop_pt`, and a weight of a
Conv/Gemm/MatMul that is all zeros where the base's was not (a whole layer pruned away).
The decision is the worst output's: one collapsed output refuses the model, however well
the first one holds.

A *no-op* is identical outputs at the same size; a result *larger* than its base, or
*slower* on the target its latency was measured on, is a failure too (:class:`Larger`,
:class:`Slower`) unless ``allow_degraded`` keeps it. Slower means both: a median beyond
:attr:`GuardPolicy.max_slowdown`, and slower in so many of the paired interleaved rounds
that equal speeds would give as many with a chance below :data:`SLOWER_P` (a one-sided
sign test). Each round is a fresh session, and at tens of microseconds sessions differ
by ±20 %: three rounds cannot tell that from a slowdown, :data:`SLOWER_ROUNDS` can. The
report states the smallest slowdown the guard resolves at the spread the rounds showed
(:func:`detectable_slowdown`): a slowdown under it may pass unseen.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from edgeship.compress.report import Latency, speed_text
from edgeship.core.errors import CompressionError, UsageError
from edgeship.models.fidelity import Fidelity
from edgeship.models.kinds import Limits, OutputVerdict, check_kind

__all__ = [
    "HINTS",
    "SLOWER_P",
    "SLOWER_POWER",
    "SLOWER_ROUNDS",
    "FidelityCollapse",
    "GuardPolicy",
    "Larger",
    "NoChange",
    "NothingToConvert",
    "Slower",
    "collapse_message",
    "collapse_reasons",
    "detectable_slowdown",
    "hint",
    "is_no_op",
    "larger_message",
    "sign_test_p",
    "slowdown_unsettled",
    "slower_at_median",
    "slower_message",
    "zeroed_layers",
]

#: A slowdown is refused when equal speeds would show as many slower rounds with a
#: smaller chance than this; at least 7 rounds are needed (1/128), and 11 of 12 do.
SLOWER_P = 0.01
#: The rounds a slowdown at the median is measured in before it is judged.
SLOWER_ROUNDS = 12
#: The chance of refusing a slowdown that :func:`detectable_slowdown` states.
SLOWER_POWER = 0.8

HINTS: dict[str, tuple[str, ...]] = {
    "prune": ("--scope layer", "a lower --sparsity", "{epochs} (fine-tuning on --data)"),
    "prune-channels": (
        "{epochs} (fine-tuning on --data)",
        "--importance activation (channels scored on --data, not by their weights' norms)",
        "a lower --sparsity",
    ),
    "int8-static": (
        "fp16",
        "--exclude-op OP (keep those op types in float)",
        "--calibration entropy",
    ),
    "int8-dynamic": ("fp16", "--exclude-op OP (keep those op types in float)"),
    "fp16": ("--exclude-op OP (keep those op types in float32)",),
    "distill": ("more --epochs", "a larger --width"),
}
"""What to try per method: alternatives, the first words of one that was given dropped."""


@dataclass(frozen=True)
class GuardPolicy:
    """When a produced model counts as collapsed: each kind's ``limits``, the accuracy drop
    allowed with labels (``max_drop_pt``, percentage points); ``output_kinds`` sets the
    kind of outputs by name (the others' are inferred); ``max_slowdown``: how much longer
    (a fraction of the base's median latency) a result may run before it counts as
    slower; ``allow_degraded`` keeps a collapsed, larger or slower result anyway (with a
    note) instead of failing."""

    limits: Limits = field(default_factory=Limits)
    max_drop_pt: float = 20.0
    allow_degraded: bool = False
    output_kinds: Mapping[str, str] = field(default_factory=dict)
    max_slowdown: float = 0.05

    def __post_init__(self) -> None:
        if self.max_drop_pt < 0:
            raise UsageError(f"max_drop_pt must be >= 0, got {self.max_drop_pt}")
        if self.max_slowdown < 0:
            raise UsageError(f"max_slowdown must be >= 0, got {self.max_slowdown}")
        for name, kind in self.output_kinds.items():
            check_kind(kind, name)


class FidelityCollapse(CompressionError):
    """The produced model no longer computes what its base does; ``reasons`` say how."""

    def __init__(self, message: str, reasons: Sequence[str]) -> None:
        super().__init__(message, reasons=list(reasons))
        self.reasons = list(reasons)


class NoChange(CompressionError):
    """The method changed nothing: same size, identical outputs."""


class NothingToConvert(NoChange):
    """The model holds nothing the method converts (``fp16`` of a model whose float
    weights are float16 already): refused before anything runs."""


class Larger(CompressionError):
    """The "compressed" result is larger than its base."""


class Slower(CompressionError):
    """The result runs slower than its base on the target it was measured on."""


def collapse_reasons(
    verdicts: Sequence[OutputVerdict], fidelity: Fidelity | None, policy: GuardPolicy
) -> list[str]:
    """What collapsed: each collapsed output (or part), named, and with labels (on the
    first output, ``fidelity``) an accuracy drop beyond the policy's."""
    reasons = [f"output {v.label}: {r}" for v in verdicts for r in v.reasons]
    drop = None if fidelity is None else fidelity.accuracy_drop_pt
    if drop is not None and drop > policy.max_drop_pt:
        assert fidelity is not None and fidelity.accuracy is not None
        assert fidelity.base_accuracy is not None
        reasons.append(
            f"accuracy {fidelity.base_accuracy:.1%} → {fidelity.accuracy:.1%} "
            f"(-{drop:.1f} pt > {policy.max_drop_pt:g})"
        )
    return reasons


def zeroed_layers(base: Any, new: Any) -> list[str]:
    """Weights of ``new``'s Conv/Gemm/MatMul nodes (ONNX) that are all zeros where the
    same-named weight of ``base`` was not."""
    from edgeship.models import onnx_graph

    before = onnx_graph.arrays(base)
    after = onnx_graph.arrays(new)
    return [
        name
        for name in onnx_graph.weight_names(new)
        if after[name].dtype.kind == "f"
        and not np.any(after[name])
        and name in before
        and np.any(before[name])
    ]


def hint(methods: Sequence[str], trained: Collection[str] = (), given: Collection[str] = ()) -> str:
    """What to try, for the methods of a result (a chain: all of them); a method in
    ``trained`` was given ``--epochs`` already, so more of them are suggested; an option
    in ``given`` (``--scope layer``) was used already, so it is not suggested."""
    tips = []
    for m in methods:
        epochs = "more --epochs" if m in trained else "--epochs N"
        left = [t.format(epochs=epochs) for t in HINTS.get(m, ()) if not _given(t, given)]
        if left:
            tips.append(", ".join(left[:-1]) + (" or " if len(left) > 1 else "") + left[-1])
    return "; ".join(dict.fromkeys(tips)) if tips else "other settings"


def _given(tip: str, given: Collection[str]) -> bool:
    return any(tip == g or tip.startswith(g + " ") for g in given)


def collapse_message(
    method: str,
    reasons: Sequence[str],
    on: str,
    methods: Sequence[str],
    trained: Collection[str] = (),
    given: Collection[str] = (),
) -> str:
    return (
        f"{method} collapsed the model: {'; '.join(reasons)} (on {on}); try "
        f"{hint(methods, trained, given)}; --allow-degraded keeps it anyway"
    )


def is_no_op(base_size: int, new_size: int, verdicts: Sequence[OutputVerdict]) -> bool:
    """Identical outputs, every one of them, at the same size (the ratio rounds to 1.000)."""
    same_size = round(new_size / base_size, 3) == 1.0 if base_size else new_size == 0
    return same_size and all(not v.metrics.get("max_abs_diff") for v in verdicts)


def larger_message(base_size: int, new_size: int) -> str | None:
    """The line naming the sizes of a result larger than its base; None when it is not."""
    if new_size <= base_size:
        return None
    return (
        f"the result is LARGER than its base ({new_size:,} vs {base_size:,} bytes, "
        f"{new_size / base_size:.3f}×)"
    )


def slower_at_median(latency: Latency, policy: GuardPolicy) -> bool:
    """Whether the result's median latency exceeds its base's by more than the margin."""
    base = latency.base_p50_ms
    return base > 0 and latency.model_p50_ms > base * (1.0 + policy.max_slowdown)


def sign_test_p(slower: int, rounds: int) -> float:
    """The chance that at least ``slower`` of ``rounds`` paired rounds come out slower
    when both models run equally fast (each round a coin toss)."""
    return sum(math.comb(rounds, k) for k in range(slower, rounds + 1)) / 2.0**rounds


def detectable_slowdown(latency: Latency, policy: GuardPolicy) -> float | None:
    """The smallest slowdown (0.2: 20 %) the guard refuses with :data:`SLOWER_POWER`
    chance, at the spread of ``latency``'s per-round ratios; None under two rounds.

    A slowdown is judged over :data:`SLOWER_ROUNDS` rounds: their median must exceed the
    margin and enough of them must come out slower for the sign test. With the logs of
    the per-round ratios normal of that spread around ``log(1 + d)``, each condition
    holds with that chance from some ``d`` on; the figure is the larger ``d``.
    """
    spread = latency.round_spread
    if spread is None:
        return None
    n = SLOWER_ROUNDS
    needed = next(k for k in range(n + 1) if sign_test_p(k, n) < SLOWER_P)
    z = NormalDist().inv_cdf
    slower = spread * z(_chance_for(needed, n, SLOWER_POWER))
    beyond = math.log1p(policy.max_slowdown) + spread * z(_chance_for(n // 2 + 1, n, SLOWER_POWER))
    return math.expm1(max(slower, beyond))


def _chance_for(k: int, n: int, power: float) -> float:
    """The chance per trial at which ``k`` or more of ``n`` trials succeed with chance
    ``power`` (bisected)."""

    def at_least(p: float) -> float:
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    low, high = 0.0, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if at_least(mid) < power else (low, mid)
    return high


def slowdown_unsettled(latency: Latency, policy: GuardPolicy) -> bool:
    """Slower at the median, but measured in too few rounds for the sign test to say so:
    :data:`SLOWER_ROUNDS` rounds would."""
    return slower_at_median(latency, policy) and latency.rounds < SLOWER_ROUNDS


def slower_message(latency: Latency, policy: GuardPolicy) -> str | None:
    """The line naming the latencies of a result slower than its base (beyond the policy's
    margin at the median, and in enough paired rounds); None when it is not."""
    if not slower_at_median(latency, policy):
        return None
    if sign_test_p(latency.rounds_slower, latency.rounds) >= SLOWER_P:
        return None
    base, model = latency.base_p50_ms, latency.model_p50_ms
    return (
        f"the result is {speed_text(latency.speedup)} than its base on {latency.target} "
        f"(p50 {model:.4f} vs {base:.4f} ms; slower in {latency.rounds_slower} of "
        f"{latency.rounds} interleaved rounds)"
    )
