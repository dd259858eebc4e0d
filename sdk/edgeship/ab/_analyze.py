"""From one device's raw measurements to its typed A/B result (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgeship.ab import _quality as quality
from edgeship.ab.pareto import model_front
from edgeship.ab.result import (
    UNSTABLE_SHARE,
    Comparison,
    Conditions,
    DeviceAB,
    Interval,
    MemorySummary,
    ModelResult,
    OpsComparison,
    OpTypeDiff,
    PooledComparison,
    SessionValidity,
)
from edgeship.ab.schedule import session_medians
from edgeship.ab.stats import (
    SignedRank,
    StatsPolicy,
    holm,
    latency_summary,
    log_spread,
    min_detectable_change,
    pooled_ratio,
    pooled_signed_rank,
    ratio_ci,
    ratio_of_medians,
    signed_rank,
    verdict,
)
from edgeship_runtime.guards import paired_reasons
from edgeship_runtime.measure import summarize_tensor
from edgeship_runtime.opprofile import op_type_diff
from edgeship_runtime.report import (
    BackendUsage,
    Environment,
    ModelInfo,
    OpProfile,
    TensorSummary,
    Validity,
)
from edgeship_runtime.signature import Signature

__all__ = [
    "DeviceRun",
    "ModelRun",
    "analyze",
    "caveat",
    "compare",
    "correct",
    "fed_inputs",
    "measurement_stable",
    "model_result",
    "ops_comparison",
    "paired_validity",
    "pooled",
    "session_validity",
]


@dataclass
class ModelRun:
    """What a device measured for one model. ``outputs`` is its first output on the data
    set (None without data), ``named_outputs`` every output by name, ``labels`` the data
    set's labels if it has them; ``inputs`` what its timed runs were fed (see
    :func:`fed_inputs`)."""

    name: str
    role: str
    path: str
    info: ModelInfo
    backend: BackendUsage
    samples_ms: list[float]
    memory: MemorySummary | None = None
    outputs: np.ndarray | None = None
    labels: np.ndarray | None = None
    ops: OpProfile | None = None
    named_outputs: dict[str, np.ndarray] | None = None
    inputs: list[TensorSummary] = field(default_factory=list)
    session_runs: list[int] = field(default_factory=list)
    """Timed runs in each session, in order (every model of a device has the same)."""


@dataclass
class DeviceRun:
    """One device's raw measurements; ``models[0]`` is the base."""

    target: dict[str, Any]
    models: list[ModelRun]
    rounds: list[list[str]] = field(default_factory=list)
    before: Conditions = field(default_factory=Conditions)
    after: Conditions = field(default_factory=Conditions)
    wall_s: float = 0.0
    environment: Environment | None = None
    validity: list[list[Validity | None]] = field(default_factory=list)
    """Per session, per model (in ``models`` order) the runtime's verdict on its window."""
    conditions: list[Conditions] = field(default_factory=list)
    """The device before and after each session's window: before 1, after 1, before 2..."""
    plan: str | None = None
    """With ``--precision``: the sessions the first ones' spread called for, in words."""


def analyze(run: DeviceRun, stats: StatsPolicy) -> DeviceAB:
    models = [model_result(m, stats) for m in run.models]
    base_run, base = run.models[0], models[0]
    variants = len(models) - 1
    comparisons = [
        compare(base_run, base, v_run, v, stats, offset=i, variants=variants)
        for i, (v_run, v) in enumerate(zip(run.models[1:], models[1:], strict=True), start=1)
    ]
    correct(comparisons, stats)
    names = [m.name for m in run.models]
    validity = [
        session_validity(k, names, v, *_window(run.conditions, k))
        for k, v in enumerate(paired_validity(run))
    ]
    return DeviceAB(
        target=run.target,
        models=models,
        comparisons=comparisons,
        pareto_front=model_front(models),
        rounds=run.rounds,
        before=run.before,
        after=run.after,
        wall_s=run.wall_s,
        environment=run.environment,
        validity=validity,
        unchecked=_unchecked(run.validity),
        op_diffs=[ops_comparison(base, v) for v in models[1:]] if base.ops else [],
        plan=run.plan,
        stable=measurement_stable(validity),
    )


def caveat(devices: Sequence[DeviceAB]) -> str | None:
    """``but the measurement on pi was UNSTABLE (6/10 sessions): not to be trusted``,
    or None when every device's measurement was stable (or none was judged)."""
    bad = [d for d in devices if d.stable is False]
    if not bad:
        return None
    where = ", ".join(
        f"{d.target.get('name', '?')} ({sum(v.verdict != 'stable' for v in d.validity)}/"
        f"{len(d.validity)} sessions)"
        for d in bad
    )
    return f"but the measurement was UNSTABLE on {where}: not to be trusted"


def measurement_stable(sessions: Sequence[SessionValidity]) -> bool | None:
    """Whether a device's sessions make a measurement to trust: at most
    :data:`~edgeship.ab.result.UNSTABLE_SHARE` of them unstable (None: none judged)."""
    if not sessions:
        return None
    unstable = sum(v.verdict != "stable" for v in sessions)
    return unstable <= UNSTABLE_SHARE * len(sessions)


def correct(comparisons: Sequence[Comparison], stats: StatsPolicy) -> None:
    """Holm-correct the comparisons' p-values across variants and give each its verdict
    on the corrected one (with one variant it is the same)."""
    adjusted = holm([c.p_value for c in comparisons])
    for c, p in zip(comparisons, adjusted, strict=True):
        c.p_value_holm = p
        c.verdict = verdict(
            SignedRank(statistic=0.0, p_value=p, prob_greater=c.prob_slower), stats.alpha
        )


def session_validity(
    session: int,
    names: Sequence[str],
    verdicts: Sequence[Validity | None],
    before: Conditions | None = None,
    after: Conditions | None = None,
) -> SessionValidity:
    """One session's verdict from its models': a reason every model shares (the device's
    state) once, a model's own reason with its name."""
    known = [(n, v) for n, v in zip(names, verdicts, strict=True) if v is not None]
    shared = set.intersection(*(set(v.reasons) for _, v in known)) if len(known) > 1 else set()
    reasons = [r for r in known[0][1].reasons if r in shared] if known else []
    for name, v in known:
        reasons += [f"{name}: {r}" for r in v.reasons if r not in shared]
    stable = all(v.verdict == "stable" for _, v in known)
    causes = {n: list(dict.fromkeys(v.causes)) for n, v in known if v.verdict != "stable"}
    return SessionValidity(
        session=session,
        verdict="stable" if stable and known else "unstable",
        reasons=reasons,
        models={n: v.verdict for n, v in known},
        warmup_runs=max((v.warmup_runs for _, v in known), default=None),
        before=before,
        after=after,
        causes=causes,
    )


def paired_validity(run: DeviceRun) -> list[list[Validity | None]]:
    """The runtime's verdicts, each session's, where a model's only reason is noise that
    its ratio to the other model's runs does not show made a ``drift`` note with a stable
    verdict: the machine's speed moved and every model's times with it, which the session
    ratio (what the comparison rests on) cancels. Contention, clock, heat, timer and
    warm-up reasons stay; so does noise the ratio shows."""
    ends = np.cumsum([0, *run.models[0].session_runs]) if run.models else np.zeros(1)
    judged = []
    for k, verdicts in enumerate(run.validity):
        if k + 1 >= len(ends):
            judged.append(list(verdicts))
            continue
        windows = [m.samples_ms[ends[k] : ends[k + 1]] for m in run.models]
        judged.append([_drift_only(v, windows, i) for i, v in enumerate(verdicts)])
    return judged


def _drift_only(v: Validity | None, windows: list[list[float]], i: int) -> Validity | None:
    if v is None or v.verdict == "stable" or set(v.causes) != {"noise"} or len(windows) < 2:
        return v
    reference = windows[1 if i == 0 else 0]
    if not reference or not windows[i] or paired_reasons(reference, windows[i]):
        return v
    note = f"drift: {'; '.join(v.reasons)}; every model alike: the paired ratio held"
    return replace(v, verdict="stable", reasons=[note], causes=["drift"])


def _window(conditions: Sequence[Conditions], session: int) -> tuple[Conditions | None, ...]:
    """The device before and after ``session``'s window, where they were recorded."""
    pair = conditions[2 * session : 2 * session + 2]
    return tuple(pair) if len(pair) == 2 else (None, None)


def fed_inputs(feeds: Mapping[str, np.ndarray], signature: Signature) -> list[TensorSummary]:
    """Name, shape and dtype of each array a model was fed; an array fed by position
    (named ``""``: one input) takes the name of the model's input."""
    return [
        summarize_tensor(name or signature.inputs[0].name, array, finite=False)
        for name, array in feeds.items()
    ]


def _unchecked(sessions: Sequence[Sequence[Validity | None]]) -> list[str]:
    seen: dict[str, None] = {}
    for session in sessions:
        for v in session:
            seen.update(dict.fromkeys(v.unchecked if v else []))
    return list(seen)


def ops_comparison(base: ModelResult, variant: ModelResult) -> OpsComparison:
    """Per op type, the variant's time against the base's."""
    b, v = base.ops, variant.ops
    if b is None or v is None or not b.available or not v.available:
        missing = next((o for o in (b, v) if o is not None and not o.available), None)
        note = missing.note if missing is not None else "no per-op profile"
        return OpsComparison(variant=variant.name, note=note)
    b_types = {t.op_type: t for t in b.op_types}
    v_types = {t.op_type: t for t in v.op_types}
    rows = []
    for name, bm, vm in op_type_diff(b.op_types, v.op_types):
        bt, vt = b_types.get(name), v_types.get(name)
        rows.append(
            OpTypeDiff(
                op_type=name,
                base_ms=bm,
                variant_ms=vm,
                delta_ms=vm - bm,
                base_share=bt.share if bt else 0.0,
                variant_share=vt.share if vt else 0.0,
                base_nodes=bt.nodes if bt else 0,
                variant_nodes=vt.nodes if vt else 0,
            )
        )
    return OpsComparison(
        variant=variant.name, base_ops_ms=b.ops_ms, variant_ops_ms=v.ops_ms, rows=rows
    )


def model_result(run: ModelRun, stats: StatsPolicy) -> ModelResult:
    medians = session_medians(run.samples_ms, run.session_runs)
    accuracy = None
    if run.outputs is not None and run.labels is not None:
        accuracy = quality.accuracy(run.outputs, run.labels, stats.confidence)
    return ModelResult(
        name=run.name,
        role=run.role,
        path=run.path,
        sha256=run.info.sha256,
        format=run.info.format,
        size_bytes=run.info.size_bytes,
        backend=run.backend,
        latency=latency_summary(run.samples_ms),
        session_medians_ms=[float(x) for x in medians],
        samples_ms=list(run.samples_ms),
        memory=run.memory,
        accuracy=accuracy,
        ops=run.ops,
        inputs=list(run.inputs),
        session_runs=list(run.session_runs),
        session_spread=log_spread(medians) if medians.size > 1 else None,
    )


def compare(
    base_run: ModelRun,
    base: ModelResult,
    variant_run: ModelRun,
    variant: ModelResult,
    stats: StatsPolicy,
    offset: int = 0,
    variants: int = 1,
) -> Comparison:
    b, v = np.asarray(base.session_medians_ms), np.asarray(variant.session_medians_ms)
    ratio = ratio_of_medians(b, v)
    ci = ratio_ci(b, v, stats, seed_offset=offset)
    test = signed_rank(b, v)
    comparison = Comparison(
        variant=variant.name,
        latency_ratio=ratio,
        latency_ratio_ci=ci,
        speedup=1.0 / ratio,
        speedup_ci=Interval(1.0 / ci.high, 1.0 / ci.low),
        p_value=test.p_value,
        prob_slower=test.prob_greater,
        verdict=verdict(test, stats.alpha),
        size_ratio=variant.size_bytes / base.size_bytes,
        min_detectable_change=min_detectable_change(b, v, stats.alpha / max(variants, 1)),
        ratio_spread=log_spread(v / b) if b.size > 1 else None,
    )
    if base.memory is not None and variant.memory is not None:
        comparison.memory_ratio = variant.memory.peak_rss_mb / base.memory.peak_rss_mb
    if base.accuracy is not None and variant.accuracy is not None:
        comparison.accuracy_drop_pp = 100.0 * (base.accuracy.accuracy - variant.accuracy.accuracy)
    if base_run.outputs is not None and variant_run.outputs is not None:
        comparison.agreement = quality.agreement(
            base_run.outputs, variant_run.outputs, stats.confidence
        )
    if comparison.agreement is not None and base_run.named_outputs and variant_run.named_outputs:
        comparison.agreement.outputs = quality.verdicts(
            base_run.named_outputs, variant_run.named_outputs
        )
    return comparison


def pooled(devices: Sequence[DeviceAB], stats: StatsPolicy) -> list[PooledComparison]:
    """Per variant, over every device that measured it (needs at least two devices)."""
    if len(devices) < 2:
        return []
    results = []
    tests = []
    base_name = devices[0].models[0].name
    for offset, comparison in enumerate(devices[0].comparisons, start=1):
        name = comparison.variant
        pairs = [
            (
                np.asarray(d.model(base_name).session_medians_ms),
                np.asarray(d.model(name).session_medians_ms),
            )
            for d in devices
        ]
        ratio, ci = pooled_ratio(pairs, stats, seed_offset=offset)
        test = pooled_signed_rank(pairs)
        tests.append(test)
        results.append(
            PooledComparison(
                variant=name,
                devices=[str(d.target.get("name", "?")) for d in devices],
                latency_ratio=ratio,
                latency_ratio_ci=ci,
                speedup=1.0 / ratio,
                speedup_ci=Interval(1.0 / ci.high, 1.0 / ci.low),
                p_value=test.p_value,
                verdict=verdict(test, stats.alpha),
            )
        )
    for result, test, p in zip(results, tests, holm([t.p_value for t in tests]), strict=True):
        result.p_value_holm = p
        result.verdict = verdict(test, stats.alpha, p)
    return results
