"""The real-model benchmark's own judge: every output, every part of a packed output,
judged for what it is, on arrays, with rules and bars of its own.

Written apart from edgeship's fidelity code (``edgeship.models``' kinds, figures and
detection agreement) and importing nothing from edgeship, so that the benchmark can catch
that code's mistakes: a case is *silently wrong* when ``compress`` succeeded and this judge
finds an output broken.

Each output has a kind, declared by the corpus (which knows its models) as a spec string,
or guessed by :func:`guess_spec` from its dtype and shape:

========================  =====================================================  =======
spec                      figure (per sample, then the mean over the samples)    bar
========================  =====================================================  =======
``scores``                top-1 agreement of the rows along the last axis        ≥ 0.7
``flag`` / ``flag:logit`` agreement of the decision (> 0.5, or > 0 for logits),  ≥ 0.85
                          mean |Δ| of the probability                             ≤ 0.1
``boxes``                 relative L2 ‖Δ‖/‖base‖, and max |Δ| in the output's     ≤ 0.1
                          own units
``landmarks:D``           mean |Δ| over the base's spread of its points           ≤ 0.1
                          (``D`` coordinates a point, default 3)
``mask@T``                IoU of the masks above ``T`` (default 0.5; the base's    ≥ 0.8
                          top 5 % where fewer than 1 % of its pixels pass ``T``)
``embedding``             cosine of each row (last axis), and nearest-neighbour   ≥ 0.9
                          agreement among all rows                                 ≥ 0.9
``ctc:B``                 greedy CTC decode (blank ``B``, default 0), 1 − edit     ≥ 0.9
                          distance over the longer text
``map`` / ``state``       cosine                                                  ≥ 0.9
``exact``                 share of equal values (integer outputs)                 ≥ 0.9
``packed:K``              a YOLO-style head ``[.., K + C, N]``: its box rows
                          judged as ``boxes``, its score rows by top-1 on the
                          anchors the base is surest of (max score ≥ 0.25, or its
                          top 1 % where fewer pass)
========================  =====================================================  =======

Whatever the kind, an output (or part) is broken when it holds non-finite values, when it
is constant over every sample and position where the base's is not (all zeros
included), or when its spread over the samples fell under 10 % of the base's (a flag or
a score stuck near one value).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BARS",
    "Bars",
    "Verdict",
    "collapse",
    "guess_spec",
    "interface_changes",
    "judge_output",
    "levenshtein",
]


@dataclass(frozen=True)
class Bars:
    """Where each figure stops being usable."""

    top1: float = 0.7
    flag: float = 0.85
    flag_error: float = 0.1
    box_error: float = 0.1
    landmark_error: float = 0.1
    mask_iou: float = 0.8
    row_cosine: float = 0.9
    nearest: float = 0.9
    text: float = 0.9
    cosine: float = 0.9
    exact: float = 0.9
    spread_kept: float = 0.1
    confident: float = 0.25
    detection_ap: float = 0.75


BARS = Bars()


@dataclass
class Verdict:
    """One output's (or part's) figures and what fails in them."""

    output: str
    kind: str
    figures: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in self.figures.items())
        text = f"{self.output} [{self.kind}] {shown}"
        return text + (f" — BROKEN: {'; '.join(self.failures)}" if self.failures else "")


def guess_spec(base: np.ndarray) -> str:
    """A kind for an output the corpus declares nothing for, from ``base``
    (``[samples, ...]``): integers are ``exact``, one value a sample a ``flag``, rows of
    2–1000 values ``scores``, anything else a ``map``."""
    if not np.issubdtype(base.dtype, np.floating):
        return "exact"
    per_sample = int(np.prod(base.shape[1:]))
    if per_sample == 1:
        probability = bool(np.all((base >= 0) & (base <= 1)))
        return "flag" if probability else "flag:logit"
    if 2 <= base.shape[-1] <= 1000 and per_sample == base.shape[-1]:
        return "scores"
    return "map"


def _per_sample(a: np.ndarray) -> np.ndarray:
    """``a`` as float64 rows, one per sample."""
    return a.astype(np.float64).reshape(len(a), -1)


def _relative_l2(b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per row, |g - b| over |b| (over 1 where the base's row is all zeros)."""
    norm = np.linalg.norm(b, axis=1)
    return np.linalg.norm(g - b, axis=1) / np.where(norm == 0, 1.0, norm)


def collapse(base: np.ndarray, got: np.ndarray, bars: Bars = BARS) -> list[str]:
    """Why ``got`` (``[samples, ...]``) is broken whatever its kind; empty when it is not."""
    b, g = _per_sample(base), _per_sample(got)
    if not np.all(np.isfinite(g)) and np.all(np.isfinite(b)):
        return [f"non-finite values ({int(np.sum(~np.isfinite(g)))} of {g.size})"]
    if np.ptp(g) == 0 and np.ptp(b) > 0:
        return [f"constant: every value is {g.flat[0]:.4g} (the base's span {np.ptp(b):.3g})"]
    if len(b) > 1:
        spread_b, spread_g = float(b.std(axis=0).mean()), float(g.std(axis=0).mean())
        if spread_b > 0 and spread_g < bars.spread_kept * spread_b:
            return [
                f"near constant over the samples: spread {spread_g:.3g} against the "
                f"base's {spread_b:.3g}"
            ]
    return []


def judge_output(
    name: str, spec: str, base: np.ndarray, got: np.ndarray, bars: Bars = BARS
) -> list[Verdict]:
    """The verdicts of one output, ``base`` and ``got`` stacked over the samples: one,
    or one per part of a packed head."""
    kind, _, param = spec.replace("@", ":").partition(":")
    if kind == "packed":
        rows = int(param or 4)
        return [
            _judge(f"{name}[boxes]", "boxes", "", base[..., :rows, :], got[..., :rows, :], bars),
            _judge(f"{name}[scores]", "anchors", "", base[..., rows:, :], got[..., rows:, :], bars),
        ]
    return [_judge(name, kind, param, base, got, bars)]


def _judge(
    name: str, kind: str, param: str, base: np.ndarray, got: np.ndarray, bars: Bars
) -> Verdict:
    verdict = Verdict(name, kind + (f":{param}" if param else ""))
    if base.shape != got.shape:
        verdict.failures.append(f"shape {list(got.shape[1:])} != base {list(base.shape[1:])}")
        return verdict
    verdict.failures += collapse(base, got, bars)
    if verdict.failures and "non-finite" in verdict.failures[0]:
        return verdict
    rule = _RULES.get(kind)
    if rule is None:
        raise ValueError(f"unknown output kind {kind!r}")
    for figure, (value, bar, higher) in rule(base, got, param, bars).items():
        verdict.figures[figure] = value
        if bar is not None and not (value >= bar if higher else value <= bar):
            verdict.failures.append(f"{figure} {value:.3g} {'<' if higher else '>'} {bar}")
    return verdict


Figures = dict[str, tuple[float, float | None, bool]]
"""figure name → (value, bar or None, whether higher is better)"""


def _rows(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64).reshape(-1, a.shape[-1])


def _cosines(b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cosine of each row pair; two zero rows agree (1), one zero row does not (0)."""
    nb, ng = np.linalg.norm(b, axis=1), np.linalg.norm(g, axis=1)
    both = (nb == 0) & (ng == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(b * g, axis=1) / (nb * ng)
    return np.where(both, 1.0, np.nan_to_num(cos, nan=0.0))


def _scores(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    b, g = _rows(base), _rows(got)
    figures: Figures = {"top1": (float(np.mean(b.argmax(1) == g.argmax(1))), bars.top1, True)}
    if np.all((b >= 0) & (b <= 1)) and np.allclose(b.sum(1), 1, atol=1e-3):
        eps = 1e-9
        kl = np.sum(b * (np.log(b + eps) - np.log(np.clip(g, 0, None) + eps)), axis=1)
        figures["kl"] = (float(np.mean(kl)), None, False)
    return figures


def _anchors(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    """A packed head's score rows ``[.., C, N]``: top-1 over the classes on the anchors
    whose best base score reaches :attr:`Bars.confident` or the base's top 1 %, whichever
    is lower (the rest is background, whose arg-max is noise)."""
    b = np.moveaxis(base, -1, -2).reshape(-1, base.shape[-2]).astype(np.float64)
    g = np.moveaxis(got, -1, -2).reshape(-1, got.shape[-2]).astype(np.float64)
    sure = b.max(1) >= min(bars.confident, float(np.quantile(b.max(1), 0.99)))
    figures: Figures = {"confident": (float(sure.sum()), None, True)}
    if sure.any():
        top1 = float(np.mean(b[sure].argmax(1) == g[sure].argmax(1)))
        figures["top1"] = (top1, bars.top1, True)
        figures["score_mae"] = (float(np.abs(b[sure].max(1) - g[sure].max(1)).mean()), None, False)
    return figures


def _flag(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    b, g = base.astype(np.float64), got.astype(np.float64)
    if param == "logit":
        b, g = 1 / (1 + np.exp(-np.clip(b, -80, 80))), 1 / (1 + np.exp(-np.clip(g, -80, 80)))
    agree = float(np.mean((b > 0.5) == (g > 0.5)))
    mae = float(np.mean(np.abs(b - g)))
    return {"decision": (agree, bars.flag, True), "mae": (mae, bars.flag_error, False)}


def _boxes(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    b, g = _per_sample(base), _per_sample(got)
    rel = _relative_l2(b, g)
    return {
        "rel_l2": (float(rel.mean()), bars.box_error, False),
        "max_abs": (float(np.abs(g - b).max()), None, False),
    }


def _landmarks(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    d = int(param or 3)
    errors = []
    for b, g in zip(base, got, strict=True):
        pb, pg = b.astype(np.float64).reshape(-1, d), g.astype(np.float64).reshape(-1, d)
        spread = float(pb.std(axis=0).mean())
        errors.append(np.abs(pg - pb).mean() / (spread if spread > 0 else 1.0))
    return {"error": (float(np.mean(errors)), bars.landmark_error, False)}


def _mask(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    cut = float(param or 0.5)
    ious = []
    for b, g in zip(base, got, strict=True):
        t = cut if np.mean(b > cut) >= 0.01 else float(np.quantile(b, 0.95))
        mb, mg = b > t, g > t
        union = np.sum(mb | mg)
        ious.append(1.0 if union == 0 else np.sum(mb & mg) / union)
    return {"iou": (float(np.mean(ious)), bars.mask_iou, True)}


def _embedding(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    b, g = _rows(base), _rows(got)
    figures: Figures = {"row_cosine": (float(_cosines(b, g).mean()), bars.row_cosine, True)}
    if len(b) >= 4:
        unit = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        guess = (g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)) @ unit.T
        nearest = float(np.mean(guess.argmax(1) == np.arange(len(b))))
        figures["nearest"] = (nearest, bars.nearest, True)
    return figures


def _ctc(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    blank = int(param or 0)
    scores = []
    for b, g in zip(
        base.reshape(len(base), -1, base.shape[-1]),
        got.reshape(len(got), -1, got.shape[-1]),
        strict=True,
    ):
        tb, tg = _greedy(b, blank), _greedy(g, blank)
        longest = max(len(tb), len(tg), 1)
        scores.append(1.0 - levenshtein(tb, tg) / longest)
    return {"text": (float(np.mean(scores)), bars.text, True)}


def _greedy(probs: np.ndarray, blank: int) -> list[int]:
    best = probs.argmax(-1)
    return [int(c) for i, c in enumerate(best) if c != blank and (i == 0 or c != best[i - 1])]


def levenshtein(a: list[int], b: list[int]) -> int:
    """Edit distance between two label sequences."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _map(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    b, g = _per_sample(base), _per_sample(got)
    rel = _relative_l2(b, g)
    return {
        "cosine": (float(_cosines(b, g).mean()), bars.cosine, True),
        "rel_l2": (float(rel.mean()), None, False),
    }


def _exact(base: np.ndarray, got: np.ndarray, param: str, bars: Bars) -> Figures:
    return {"equal": (float(np.mean(base == got)), bars.exact, True)}


_RULES = {
    "scores": _scores,
    "anchors": _anchors,
    "flag": _flag,
    "boxes": _boxes,
    "landmarks": _landmarks,
    "mask": _mask,
    "embedding": _embedding,
    "ctc": _ctc,
    "map": _map,
    "state": _map,
    "exact": _exact,
}


def interface_changes(
    base: list[tuple[str, str, tuple[int | None, ...]]],
    got: list[tuple[str, str, tuple[int | None, ...]]],
    what: str,
) -> list[str]:
    """Each change of an input's or output's dtype or fixed shape, position by position
    (``(name, dtype, shape)``, ``None`` for a dynamic dim); a renamed one is not a change
    (conversion to another format renames)."""
    if len(base) != len(got):
        return [f"{len(got)} {what}s, the base has {len(base)}"]
    changes = []
    for (name, bt, bs), (_, gt, gs) in zip(base, got, strict=True):
        if bt != gt:
            changes.append(f"{what} {name!r} {bt} → {gt}")
        fixed = len(bs) == len(gs) and all(
            x is None or y is None or x == y for x, y in zip(bs, gs, strict=True)
        )
        if not fixed:
            changes.append(f"{what} {name!r} shape {list(bs)} → {list(gs)}")
    return changes
