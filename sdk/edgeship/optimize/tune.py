"""Session tuning on the device itself: try settings, keep the fastest, store it.

Candidates come from the device (its usable cores, its runtime's providers) and its board
profile (``targets/*.toml``: default threads, preferred ONNX Runtime providers): thread
counts 1, 2, 4, ... up to the cores, each provider chain the profile prefers that the
device has, and ONNX Runtime's sequential and parallel execution modes. The backend's
defaults (threads 0, CPU, sequential) are always measured too, as the baseline.

Every candidate is profiled in each of ``rounds`` interleaved rounds (so drift — heat,
other load — spreads over all of them) and scored by the median of its per-round p50.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeship.core.config import ProfileConfig
from edgeship.core.errors import EdgeshipError, TargetError
from edgeship.models.model_file import ModelFile
from edgeship.models.ref import ModelRef
from edgeship.optimize._report import Trial, TuneReport
from edgeship.targets import Target
from edgeship.targets.profiles import BoardProfile, get_profile, match_profile
from edgeship.targets.settings import StoredSettings, now
from edgeship_runtime.backends import SessionOptions, default_backend
from edgeship_runtime.errors import UsageError
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.report import ProfileReport

__all__ = [
    "CPU",
    "MODES",
    "TRIAL_SECONDS",
    "TuneConfig",
    "TuneProgress",
    "board_profile",
    "candidates",
    "choose",
    "measure",
    "profile_as_given",
    "provider_chains",
    "thread_counts",
    "tune",
]

MODES = ("sequential", "parallel")
TRIAL_SECONDS = 0.25
"""Timed running per candidate and round by default, in seconds: a tune tries up to
dozens of settings, each in every round."""
CPU = "CPUExecutionProvider"

TuneProgress = Callable[[int, int, str], None]
"""Called before each trial with (trial number from 1, trials in all, the settings' label
as the report names them); a trial is one candidate profiled in one round."""


@dataclass(frozen=True)
class TuneConfig:
    """What to try and how to measure. Empty ``threads``/``providers`` mean: from the
    device and its profile. ``policy`` is per candidate and round. ``trt_cache`` and
    ``trt_fp16`` go with every candidate (TensorRT's engine cache, fp16 kernels)."""

    threads: tuple[int, ...] = ()
    providers: tuple[tuple[str, ...], ...] = ()
    trt_cache: bool = True
    trt_fp16: bool = False
    modes: tuple[str, ...] = MODES
    policy: MeasurePolicy = field(
        default_factory=lambda: MeasurePolicy(warmup=5, runs=30, min_seconds=TRIAL_SECONDS)
    )
    rounds: int = 3
    profile: str | None = None
    inputs: Path | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seed: int = 0
    store: bool = True
    max_candidates: int = 32
    min_gain: float = 1.03

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise UsageError(f"--rounds must be at least 1, got {self.rounds}")
        if any(t < 0 for t in self.threads):
            raise UsageError(f"thread counts must be >= 0, got {list(self.threads)}")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise UsageError(f"execution modes must be among {', '.join(MODES)}, got {bad}")
        if self.max_candidates < 1:
            raise UsageError("max_candidates must be at least 1")
        if self.min_gain < 1.0:
            raise UsageError(f"--min-gain must be at least 1.0, got {self.min_gain}")


def thread_counts(cores: int, profile_threads: int = 0) -> list[int]:
    """1, 2, 4, ... below ``cores``, ``cores`` itself, and the profile's count."""
    counts = {cores, *(2**i for i in range(cores.bit_length()) if 2**i <= cores)}
    if 0 < profile_threads <= cores:
        counts.add(profile_threads)
    return sorted(c for c in counts if c >= 1)


def provider_chains(preferred: Sequence[str], available: Sequence[str]) -> list[tuple[str, ...]]:
    """Each suffix of the preferred chain that the device has, e.g. (TRT, CUDA, CPU),
    (CUDA, CPU), (CPU,); the CPU alone is always one."""
    present = [p for p in preferred if p in available and p != CPU]
    chains = [(*present[i:], CPU) for i in range(len(present))]
    return [*chains, (CPU,)]


def candidates(
    backend: str,
    threads: Sequence[int],
    chains: Sequence[tuple[str, ...]],
    modes: Sequence[str],
) -> list[SessionOptions]:
    """Every combination the backend can tell apart (TFLite: threads only)."""
    if backend != "onnxruntime":
        return [SessionOptions(threads=t) for t in threads]
    return [
        SessionOptions(threads=t, providers=chain, execution_mode=mode)
        for chain in chains
        for t in threads
        for mode in modes
    ]


def board_profile(target: Target, info: dict[str, Any], name: str | None) -> BoardProfile | None:
    """The profile named, else the target's own, else the best match for what it runs on."""
    if name:
        return get_profile(name)
    own = target.board_profile()
    if own is not None:
        return own
    env = info.get("environment") or {}
    return match_profile({"arch": env.get("arch"), "board": env.get("board"), "files": []})


def tune(
    model: Path,
    target: Target,
    config: TuneConfig | None = None,
    progress: TuneProgress | None = None,
) -> TuneReport:
    """Measure candidates on ``target``, pick the fastest, store it (unless told not to);
    ``progress`` hears of each trial as it starts."""
    config = config or TuneConfig()
    model = Path(model)
    backend = _backend_of(model)
    info = target.info()
    profile = board_profile(target, info, config.profile)
    options = _candidates(config, backend, info, profile)
    baseline = SessionOptions()
    trials = measure(target, model, [baseline, *options], config, progress)
    default, tried = trials[0], trials[1:]
    best, note = choose(default, tried, config.min_gain)
    report = TuneReport(
        model=ModelRef.of_file(model, backend),
        backend=backend,
        profile=profile.name if profile else "",
        rounds=config.rounds,
        runs=config.policy.runs,
        default=default,
        best=best,
        trials=tried,
        gain=round(default.p50_ms / best.p50_ms, 4) if best.p50_ms > 0 else 1.0,
        note=note,
        target=target.identity(),
    )
    if config.store:
        report.stored_at = target.settings_store().write(_settings(report, target))
    return report


def choose(default: Trial, tried: Sequence[Trial], min_gain: float) -> tuple[Trial, str]:
    """The fastest candidate (median p50) if it beats the defaults by ``min_gain`` and in
    most rounds (paired: rounds interleave); else the defaults, and why. The winner of
    many noisy candidates looks better than it is, so a thin or fickle win is not taken."""
    ok = [t for t in tried if not t.error]
    if not ok:
        return default, "every candidate failed; the defaults stay" if tried else ""
    best = min(ok, key=lambda t: t.p50_ms)
    gain = default.p50_ms / best.p50_ms if best.p50_ms > 0 else 1.0
    if gain < min_gain:
        return default, (
            f"no candidate beat the defaults by {100 * (min_gain - 1):.0f}% "
            f"(best: {best.label()}, {gain:.3f}x)"
        )
    pairs = list(zip(best.p50_per_round_ms, default.p50_per_round_ms, strict=False))
    wins = sum(b < d for b, d in pairs)
    if 2 * wins <= len(pairs):
        return default, f"{best.label()} was faster in only {wins} of {len(pairs)} rounds"
    return best, ""


def _candidates(
    config: TuneConfig, backend: str, info: dict[str, Any], profile: BoardProfile | None
) -> list[SessionOptions]:
    env = info.get("environment") or {}
    cores = int(env.get("usable_cores") or env.get("logical_cores") or 1)
    threads = list(config.threads) or thread_counts(cores, profile.threads if profile else 0)
    backends: list[dict[str, Any]] = info.get("backends", [])
    ort_info = next((b for b in backends if b.get("name") == "onnxruntime"), {})
    preferred = profile.onnxruntime_providers if profile else (CPU,)
    chains = list(config.providers) or provider_chains(preferred, ort_info.get("providers", []))
    found = [
        replace(c, trt_cache=config.trt_cache, trt_fp16=config.trt_fp16)
        for c in candidates(backend, threads, chains, config.modes)
    ]
    if len(found) > config.max_candidates:
        raise UsageError(
            f"{len(found)} candidate settings exceed --max-candidates {config.max_candidates}; "
            "narrow --threads/--modes or raise the limit"
        )
    return found


def measure(
    target: Target,
    model: Path,
    sessions: Sequence[SessionOptions],
    config: TuneConfig,
    progress: TuneProgress | None = None,
) -> list[Trial]:
    """Profile each session in ``config.rounds`` interleaved rounds; a failing one is kept
    with its error (a provider that will not load) and never picked."""
    per_round: list[list[float]] = [[] for _ in sessions]
    means: list[list[float]] = [[] for _ in sessions]
    errors = [""] * len(sessions)
    base = ProfileConfig(
        policy=config.policy, inputs=config.inputs, shapes=dict(config.shapes), seed=config.seed
    )
    for round_ in range(config.rounds):
        for i, session in enumerate(sessions):
            if errors[i]:
                continue
            if progress is not None:
                label = _trial(session, [], [], "").label()
                progress(round_ * len(sessions) + i + 1, config.rounds * len(sessions), label)
            try:
                report = profile_as_given(target, model, replace(base, session=session))
            except TargetError:
                raise
            except EdgeshipError as exc:
                errors[i] = str(exc)
                continue
            per_round[i].append(report.latency_ms.p50)
            means[i].append(report.latency_ms.mean)
    return [_trial(s, per_round[i], means[i], errors[i]) for i, s in enumerate(sessions)]


def profile_as_given(target: Target, model: Path, config: ProfileConfig) -> ProfileReport:
    """``Target.profile`` without the stored-settings lookup: the baseline must be the
    backend's defaults even when settings for this model are stored."""
    with target.load(model, config) as loaded:
        return loaded.profile()


def _trial(session: SessionOptions, p50s: list[float], means: list[float], error: str) -> Trial:
    return Trial(
        threads=session.threads,
        providers=list(session.providers),
        execution_mode=session.execution_mode,
        p50_ms=statistics.median(p50s) if p50s else float("inf"),
        mean_ms=statistics.median(means) if means else float("inf"),
        p50_per_round_ms=[round(v, 6) for v in p50s],
        error=error,
    )


def _settings(report: TuneReport, target: Target) -> StoredSettings:
    best = report.best
    return StoredSettings(
        model_sha256=report.model.sha256 or "",
        backend=report.backend,
        threads=best.threads,
        providers=list(best.providers),
        execution_mode=best.execution_mode,
        p50_ms=best.p50_ms,
        default_p50_ms=report.default.p50_ms,
        target=target.name,
        tuned_at=now(),
    )


def _backend_of(model: Path) -> str:
    return default_backend(ModelFile.of(model).format)
