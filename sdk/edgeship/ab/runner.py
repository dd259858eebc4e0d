"""Run an A/B on one device or a fleet: the I/O around :mod:`.analyze`.

Per device, in this order:

1. Latency, in one runtime process: ``sessions`` times, load every model afresh (random
   order), run the runtime's ``interleave`` op, unload (see :mod:`.schedule`).
2. Quality, in the same process, with data: every model runs the data set (the runtime
   chunks it through fixed-batch models) and its first output comes back.
3. Memory, one fresh runtime process per model (the target's session is closed between
   models), so one model's allocations cannot hide in another's high-water mark.

Bad input is refused before any device is touched where the host can tell (gates, data,
``--inputs`` counts); models whose input signatures differ are refused after the first
load, since only the device knows them.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeship.ab._analyze import DeviceRun, ModelRun, analyze, caveat, fed_inputs, pooled
from edgeship.ab.gates import Gate, check_all
from edgeship.ab.result import ABReport, Conditions, Design, DeviceFailure, MemorySummary
from edgeship.ab.schedule import MAX_SESSIONS, Schedule, session_medians
from edgeship.ab.stats import StatsPolicy, detectable_change, log_spread, plan_sessions
from edgeship.core.config import ConnectOptions, ProfileConfig, fit_threads
from edgeship.core.errors import EdgeshipError, ModelError, UsageError
from edgeship.core.extras import missing_extras
from edgeship.targets import Loaded, Target, open_targets, wire
from edgeship.targets.fleet import DEFAULT_FORKS, run_each
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.inputs import LABELS_KEY, generate_feeds, load_arrays, per_call_inputs
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.opprofile import OpsPolicy
from edgeship_runtime.report import DeviceState, Environment, Validity
from edgeship_runtime.serde import from_jsonable
from edgeship_runtime.signature import Signature

__all__ = [
    "ABConfig",
    "ABProgress",
    "ABStep",
    "Arrays",
    "Prepared",
    "build_report",
    "check_signatures",
    "measure_device",
    "model_names",
    "prepare",
    "run_ab",
]


@dataclass(frozen=True)
class ABConfig:
    """One A/B: schedule, statistics, how to open sessions, inputs, data and gates.

    ``inputs`` and ``data`` hold no file (timing inputs generated once from each model's
    signature with the schedule's seed and ``shapes``, as the runtime generates them; no
    quality), one file for every model, or one per model in the order base, variants.
    ``memory`` measures each model's peak RSS over ``memory_runs`` runs in a fresh process.
    ``ops``: also profile each model's operators (in a profiling session of its own) and
    compare the variants' op types with the base's.
    """

    schedule: Schedule = field(default_factory=Schedule)
    stats: StatsPolicy = field(default_factory=StatsPolicy)
    session: SessionOptions = field(default_factory=SessionOptions)
    backend: str | None = None
    inputs: tuple[Path, ...] = ()
    data: tuple[Path, ...] = ()
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    gates: tuple[Gate, ...] = ()
    memory: bool = True
    memory_runs: int = 20
    ops: OpsPolicy | None = None

    def __post_init__(self) -> None:
        self.pinned_session()  # a chosen --threads beyond --cpus is refused before any device
        if self.memory_runs < 1:
            raise UsageError(f"memory runs must be at least 1, got {self.memory_runs}")
        for gate in self.gates:
            if gate.needs_data and not self.data:
                what = "a data set with labels" if gate.needs_labels else "a data set"
                raise UsageError(f"gate {gate.name} needs {what}: pass --data FILE.npz")

    def design(self) -> Design:
        s, st = self.schedule, self.stats
        return Design(
            runs=s.runs,
            sessions=s.sessions,
            rounds=s.rounds,
            block=s.block,
            warmup=s.warmup,
            seed=s.seed,
            alpha=st.alpha,
            confidence=st.confidence,
            bootstrap=st.bootstrap,
            threads=self.pinned_session().threads,
            min_seconds=s.min_seconds,
            precision=s.precision,
            cpus=list(s.cpus),
        )

    def profile_config(self) -> ProfileConfig:
        return ProfileConfig(session=self.session, backend=self.backend)

    def pinned_session(self) -> SessionOptions:
        """The timing sessions' options: at most one thread per CPU of ``--cpus``."""
        return fit_threads(self.session, self.schedule.cpus, self.session.threads > 0)

    def interleave_config(self) -> ProfileConfig:
        """How an interleaved session loads its models: with thread pools that sleep as a
        run ends, so a model idle between its blocks leaves the CPUs to the timed one."""
        session = replace(self.pinned_session(), idle_spin=False)
        return ProfileConfig(session=session, backend=self.backend)


@dataclass(frozen=True)
class ABStep:
    """Where one device's A/B stands, as it starts a step: ``phase`` is ``latency``
    (session ``index`` of ``total``, every model loaded and interleaved), ``plan`` (with
    ``--precision``: ``total`` sessions planned, ``model`` says why and how long),
    ``quality``, ``ops`` or ``memory`` (model ``index`` of ``total``, named ``model``), or
    ``done`` (the device finished or failed)."""

    target: str
    phase: str
    index: int = 0
    total: int = 0
    model: str = ""


ABProgress = Callable[[ABStep], None]


@dataclass
class Prepared:
    """Host-side inputs, read and checked once: per model its name, path, timing arrays
    (None: generated on the device) and data arrays (None: no quality)."""

    names: list[str]
    paths: list[Path]
    inputs: list[dict[str, np.ndarray] | None]
    data: list[dict[str, np.ndarray] | None]
    per_model_inputs: bool


Arrays = dict[str, np.ndarray]


def model_names(paths: Sequence[Path]) -> list[str]:
    """File stems; where stems collide the file names (``cnn.onnx``, ``cnn.tflite``);
    where those collide too, ``#2``, ``#3``... (an A/A run names one file twice)."""
    stems = [p.stem for p in paths]
    wanted = [p.name if stems.count(p.stem) > 1 else p.stem for p in paths]
    names: list[str] = []
    for name in wanted:
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}#{n}"
        names.append(unique)
    return names


def prepare(base: Path, variants: Sequence[Path], config: ABConfig) -> Prepared:
    paths = [Path(base), *(Path(v) for v in variants)]
    if len(paths) < 2:
        raise UsageError("an A/B needs a base and at least one variant")
    for path in paths:
        if not path.is_file():
            raise ModelError(f"{path}: no such model file", path=str(path))
    inputs = _per_model(config.inputs, len(paths), "--inputs")
    data = _per_model(config.data, len(paths), "--data")
    needs_labels = [g.name for g in config.gates if g.needs_labels]
    for path in dict.fromkeys(config.data) if needs_labels else ():
        if LABELS_KEY not in load_arrays(str(path)):
            raise UsageError(
                f"gate {needs_labels[0]} needs labels, but {path} has no {LABELS_KEY!r} array"
            )
    return Prepared(model_names(paths), paths, inputs, data, len(config.inputs) > 1)


def _per_model(files: Sequence[Path], models: int, option: str) -> list[Arrays | None]:
    """No file: None per model; one file: its arrays for every model; else one each."""
    if not files:
        return [None] * models
    if len(files) not in (1, models):
        raise UsageError(
            f"{option} given {len(files)} times for {models} models: give it once (for "
            f"every model) or once per model, in the order base, variants"
        )
    arrays: list[Arrays | None] = [load_arrays(str(f)) for f in files]
    return arrays * models if len(arrays) == 1 else arrays


# ---------------------------------------------------------------------------- one device


def measure_device(
    target: Target, prep: Prepared, config: ABConfig, progress: ABProgress | None = None
) -> DeviceRun:
    """Latency, quality and memory of every model on ``target`` (see the module doc).
    The target's runtime session is closed at the end, and on any failure. ``progress``
    hears of each step as it starts, and of the end."""
    report = _reporter(target, progress)
    try:
        environment = from_jsonable(Environment, target.info()["environment"])
        started = time.monotonic()
        timing = _timing(target, prep, config, report)
        if any(d is not None for d in prep.data):
            _quality(target, prep, config, timing.runs, report)
        if config.ops is not None:
            _ops(target, prep, config, config.ops, timing, report)
        if config.memory:
            for i, (run, path, feeds) in enumerate(
                zip(timing.runs, prep.paths, timing.feeds, strict=True)
            ):
                report("memory", i, len(timing.runs), run.name)
                run.memory = _memory(target, config, path, feeds)
    finally:
        report("done", 0, 0, "")
        target.close()
    return DeviceRun(
        target=target.identity(),
        models=timing.runs,
        rounds=timing.rounds,
        before=timing.conditions[0],
        after=timing.conditions[-1],
        wall_s=time.monotonic() - started,
        environment=environment,
        validity=timing.validity,
        conditions=timing.conditions,
        plan=timing.plan,
    )


_Report = Callable[[str, int, int, str], None]
"""(phase, index from 0, total, model): one step to the device's :data:`ABProgress`."""


def _reporter(target: Target, progress: ABProgress | None) -> _Report:
    def report(phase: str, index: int, total: int, model: str) -> None:
        if progress is not None:
            progress(ABStep(target.name, phase, index + 1 if total else 0, total, model))

    return report


@dataclass
class _Timing:
    runs: list[ModelRun]
    feeds: list[Arrays]
    """Per model, the timing inputs every session (and the memory runs) used."""
    rounds: list[list[str]] = field(default_factory=list)
    conditions: list[Conditions] = field(default_factory=list)
    validity: list[list[Validity | None]] = field(default_factory=list)
    plan: str | None = None


def _timing(target: Target, prep: Prepared, config: ABConfig, report: _Report) -> _Timing:
    """Every session: the pilot ones, then (with ``--precision``) as many more as their
    spread calls for."""
    schedule = config.schedule
    samples: list[list[float]] = [[] for _ in prep.paths]
    session_runs: list[int] = []
    timing = _Timing(runs=[], feeds=[])
    infos: list[Loaded | None] = [None] * len(prep.paths)
    total, started = schedule.pilot, time.monotonic()
    session = 0
    while session < total:
        report("latency", session, total, "")
        result = _session(target, prep, config, session, timing, infos)
        for i, runs in enumerate(result.samples_ms):
            samples[i].extend(runs)
        session_runs.append(len(result.samples_ms[0]))
        timing.rounds += [[prep.names[i] for i in r] for r in result.rounds]
        timing.conditions += [
            _conditions(result.before, result.device_before),
            _conditions(result.after, result.device_after),
        ]
        timing.validity.append(result.validity)
        session += 1
        if session == schedule.pilot and schedule.precision is not None:
            per_session = (time.monotonic() - started) / session
            total, timing.plan = _plan(samples, session_runs, config, per_session)
            report("plan", 0, total, timing.plan)
    timing.runs = [
        ModelRun(
            name=name,
            role="base" if i == 0 else "variant",
            path=str(prep.paths[i]),
            info=m.info,
            backend=m.backend,
            samples_ms=samples[i],
            inputs=fed_inputs(timing.feeds[i], m.signature),
            session_runs=list(session_runs),
        )
        for i, (name, m) in enumerate(zip(prep.names, infos, strict=True))
        if m is not None
    ]
    return timing


def _session(
    target: Target,
    prep: Prepared,
    config: ABConfig,
    session: int,
    timing: _Timing,
    infos: list[Loaded | None],
) -> wire.Interleaved:
    """One session: every model loaded afresh (in the session's order), interleaved,
    unloaded; the first session checks the signatures and makes the timing inputs."""
    schedule = config.schedule
    with contextlib.ExitStack() as stack:
        for i in schedule.load_order(session, len(prep.paths)):
            infos[i] = stack.enter_context(target.load(prep.paths[i], config.interleave_config()))
        loaded = [m for m in infos if m is not None]
        if session == 0:
            signatures = [m.signature for m in loaded]
            check_signatures(prep, signatures)
            timing.feeds = _timing_feeds(prep, signatures, config)
        return target.interleave(loaded, schedule.policy(session), timing.feeds)


def _plan(
    samples: Sequence[Sequence[float]],
    session_runs: Sequence[int],
    config: ABConfig,
    seconds_per_session: float,
) -> tuple[int, str]:
    """(sessions in all, the plan in words) for ``config.schedule.precision`` from the
    sessions so far: the widest spread of a variant's log session ratios, tested at
    alpha over the variants (Holm's strictest level)."""
    schedule, done = config.schedule, len(session_runs)
    precision = schedule.precision or 0.0
    base, *variants = [session_medians(s, session_runs) for s in samples]
    spread = max(log_spread(v / base) for v in variants)
    alpha = config.stats.alpha / max(len(variants), 1)
    needed = plan_sessions(spread, precision, alpha, least=schedule.sessions, most=MAX_SESSIONS)
    total = needed or MAX_SESSIONS
    more = total - done
    seen = f"the first {done} sessions' ratios spread by {100 * spread:.2f} %"
    if needed is None:
        reach = detectable_change(spread, total, alpha)
        return total, (
            f"precision {100 * precision:g} %: {seen}; even {MAX_SESSIONS} sessions resolve "
            f"only ±{100 * (reach or 0.0):.1f} %: running {more} more, about "
            f"{_duration(more * seconds_per_session)} (cut the noise: close other work, "
            "--cpus, --min-seconds)"
        )
    return total, (
        f"precision {100 * precision:g} %: {seen}; {total} sessions resolve it: running "
        f"{more} more, about {_duration(more * seconds_per_session)}"
    )


def _duration(seconds: float) -> str:
    """``40 s`` or ``3.5 min``."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _timing_feeds(
    prep: Prepared, signatures: Sequence[Signature], config: ABConfig
) -> list[Arrays]:
    """Per model, its timing inputs made once: the given arrays, else arrays generated
    from its signature with the schedule's seed (dynamic dims from ``shapes``, else from a
    sample of ``--data``: never guessed), so every model, session and memory run gets the
    very same inputs."""
    seed = config.schedule.seed
    return [
        _for_model(arrays, sig)
        if arrays is not None
        else generate_feeds(sig, {**_data_shapes(data, sig), **config.shapes}, seed=seed)
        for arrays, data, sig in zip(prep.inputs, prep.data, signatures, strict=True)
    ]


def _data_shapes(data: Arrays | None, signature: Signature) -> dict[str, tuple[int, ...]]:
    """Batch-1 shapes of one sample of ``data`` for the inputs with dynamic dims (an input
    given once per call, such as a state, keeps its own shape)."""
    if data is None:
        return {}
    fixed = per_call_inputs(signature, data)
    return {
        s.name: tuple(data[s.name].shape) if s.name in fixed else (1, *data[s.name].shape[1:])
        for s in signature.inputs
        if s.is_dynamic and s.name in data and data[s.name].ndim
    }


def _for_model(arrays: Mapping[str, np.ndarray], signature: Signature) -> dict[str, np.ndarray]:
    """The arrays for a model: labels dropped; one array for a one-input model goes in
    by position (named ``""``), so an .onnx and a .tflite with other names share a file."""
    feeds = {k: v for k, v in arrays.items() if k != LABELS_KEY}
    if len(feeds) == 1 and len(signature.inputs) == 1:
        return {"": next(iter(feeds.values()))}
    return feeds


def _conditions(seen: wire.Conditions, device: DeviceState | None) -> Conditions:
    return Conditions(seen.temperature_c, seen.cpu_freq_mhz, device)


def _quality(
    target: Target, prep: Prepared, config: ABConfig, runs: list[ModelRun], report: _Report
) -> None:
    load_cfg = config.profile_config()
    for i, (run, path, arrays) in enumerate(zip(runs, prep.paths, prep.data, strict=True)):
        if arrays is None:
            continue
        report("quality", i, len(runs), run.name)
        with target.load(path, load_cfg) as loaded:
            outputs = loaded.run(_for_model(arrays, loaded.signature))
        run.named_outputs = dict(outputs)
        run.outputs = next(iter(outputs.values()))
        run.labels = arrays.get(LABELS_KEY)


def _ops(
    target: Target,
    prep: Prepared,
    config: ABConfig,
    policy: OpsPolicy,
    timing: _Timing,
    report: _Report,
) -> None:
    """Each model's per-operator profile, on its timing inputs."""
    runs = timing.runs
    for i, (run, path, feeds) in enumerate(zip(runs, prep.paths, timing.feeds, strict=True)):
        report("ops", i, len(runs), run.name)
        with target.load(path, config.profile_config()) as loaded:
            run.ops = loaded.profile_ops(policy, inputs=feeds)


def _memory(target: Target, config: ABConfig, path: Path, feeds: Arrays) -> MemorySummary:
    """Peak RSS and load delta of one model in a runtime process of its own."""
    target.restart()
    policy = MeasurePolicy(warmup=1, runs=config.memory_runs, min_seconds=0.0)
    with target.load(path, config.profile_config()) as loaded:
        report = loaded.profile(ProfileConfig(policy=policy), inputs=feeds)
    target.restart()
    mem = report.memory_mb
    return MemorySummary(
        peak_rss_mb=mem.peak_rss,
        load_delta_mb=mem.load_delta,
        rss_after_load_mb=mem.rss_after_load,
        method=mem.method,
    )


def check_signatures(prep: Prepared, signatures: Sequence[Signature]) -> None:
    """Refuse models whose inputs differ (count, dtype, rank, fixed dims; names too when
    there are several) unless ``--inputs`` were given per model."""
    if prep.per_model_inputs:
        return
    base = signatures[0]
    for name, sig in zip(prep.names[1:], signatures[1:], strict=True):
        if not _compatible(base, sig):
            raise UsageError(
                f"models have different input signatures ({prep.names[0]}: {_describe(base)}; "
                f"{name}: {_describe(sig)}): give --inputs once per model, in the order "
                "base, variants"
            )


def _compatible(a: Signature, b: Signature) -> bool:
    if len(a.inputs) != len(b.inputs):
        return False
    for x, y in zip(a.inputs, b.inputs, strict=True):
        if x.dtype != y.dtype or len(x.shape) != len(y.shape):
            return False
        if len(a.inputs) > 1 and x.name != y.name:
            return False
        for dx, dy in zip(x.shape, y.shape, strict=True):
            fixed = isinstance(dx, int) and isinstance(dy, int) and dx > 0 and dy > 0
            if fixed and dx != dy:
                return False
    return True


def _describe(signature: Signature) -> str:
    return ", ".join(f"{s.name} {s.dtype} {s.shape_text()}" for s in signature.inputs)


# ---------------------------------------------------------------------------- fleets


@missing_extras()
def run_ab(
    base: str | Path,
    variants: Sequence[str | Path],
    targets: str | Target | Sequence[Target] = "local",
    config: ABConfig | None = None,
    connect: ConnectOptions | None = None,
    forks: int = DEFAULT_FORKS,
    progress: ABProgress | None = None,
) -> ABReport:
    """A/B ``variants`` against ``base`` on every target; the typed report.

    On one device its errors propagate. On several, each device's failure is recorded in
    ``failures`` and the others go on; a :class:`UsageError` (the same on every device,
    e.g. input signatures that differ) is raised instead. ``progress`` hears of every
    device's steps, from the devices' threads.
    """
    config = config or ABConfig()
    prep = prepare(Path(base), [Path(v) for v in variants], config)
    if isinstance(targets, str):
        targets = open_targets(targets, connect)
    elif isinstance(targets, Target):
        targets = [targets]
    runs: list[DeviceRun] = []
    failures: list[DeviceFailure] = []
    if len(targets) == 1:
        runs.append(measure_device(targets[0], prep, config, progress))
    else:
        results = run_each(targets, lambda t: measure_device(t, prep, config, progress), forks)
        for r in results:
            if isinstance(r.error, UsageError):
                raise r.error
            if r.value is not None:
                runs.append(r.value)
            elif r.error is not None:
                failures.append(_failure(r.target, r.error))
    return build_report(prep, runs, failures, config)


def _failure(target: str, error: EdgeshipError) -> DeviceFailure:
    return DeviceFailure(target=target, type=type(error).__name__, message=str(error))


def build_report(
    prep: Prepared, runs: Sequence[DeviceRun], failures: list[DeviceFailure], config: ABConfig
) -> ABReport:
    devices = [analyze(run, config.stats) for run in runs]
    gates = check_all(config.gates, devices)
    judged = [d.stable for d in devices if d.stable is not None]
    return ABReport(
        base=prep.names[0],
        variants=prep.names[1:],
        design=config.design(),
        devices=devices,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        pooled=pooled(devices, config.stats),
        gates=gates,
        failures=failures,
        passed=not failures and bool(devices) and all(g.passed for g in gates),
        stable=all(judged) if judged else None,
        caveat=caveat(devices),
    )
