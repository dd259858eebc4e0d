"""Synthetic A/B measurements: latencies with session effects and drift, no device.

``latencies`` draws (sessions, runs) arrays shaped like what the runtime measures: a
drift shared by every model in a session (heat, clock, load), a per-load offset of each
model (where its buffers landed), and per-run noise with a long right tail.
"""

from __future__ import annotations

import numpy as np

from edgeship.ab._analyze import DeviceRun, ModelRun
from edgeship.ab.result import ABReport, Conditions, MemorySummary
from edgeship.ab.runner import ABConfig, Prepared, build_report
from edgeship_runtime.report import (
    BackendUsage,
    DeviceState,
    Environment,
    ModelInfo,
    OpProfile,
    OpTypeTime,
    TensorSummary,
    Validity,
)

SHAPE = [1, 1, 8, 8]
"""The fake models' one input, ``x``."""


def latencies(
    rng: np.random.Generator,
    median_ms: float,
    sessions: int = 10,
    runs: int = 30,
    drift: np.ndarray | None = None,
    load_sd: float = 0.004,
    noise_sd: float = 0.05,
) -> np.ndarray:
    """(sessions, runs) latencies in ms whose population median is ``median_ms`` times
    the session drift (``drift`` shared between models, default none)."""
    drift = np.ones(sessions) if drift is None else drift
    load = np.exp(rng.normal(0.0, load_sd, size=(sessions, 1)))
    noise = np.exp(rng.normal(0.0, noise_sd, size=(sessions, runs)))
    return median_ms * drift[:, None] * load * noise


def model_run(
    name: str,
    samples: np.ndarray,
    role: str = "variant",
    size_bytes: int = 1000,
    peak_rss_mb: float = 100.0,
    outputs: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> ModelRun:
    return ModelRun(
        name=name,
        role=role,
        path=f"/models/{name}.onnx",
        info=ModelInfo(path=f"/d/{name}", sha256="0" * 64, format="onnx", size_bytes=size_bytes),
        backend=BackendUsage(name="onnxruntime", version="1.0", threads=1),
        samples_ms=[float(x) for x in samples.ravel()],
        memory=MemorySummary(peak_rss_mb, 10.0, peak_rss_mb - 2, "VmHWM"),
        outputs=outputs,
        labels=labels,
        inputs=[TensorSummary("x", list(SHAPE), "float32")],
        session_runs=[samples.shape[1]] * samples.shape[0] if samples.ndim == 2 else [samples.size],
    )


OUTSIDE_OPS_MS = 0.25
PROFILER_OVERHEAD = 0.04


def op_profile(**totals_ms: float) -> OpProfile:
    """An operator profile with one node per op type taking ``totals_ms[op_type]``, 0.25 ms
    outside the operators and a profiler overhead of 4 %."""
    ops_ms = sum(totals_ms.values())
    profiled = ops_ms + OUTSIDE_OPS_MS
    return OpProfile(
        available=True,
        backend="onnxruntime",
        runs=40,
        central_runs=20,
        ops_ms=ops_ms,
        op_types=[OpTypeTime(name, 1, ms, ms / ops_ms) for name, ms in totals_ms.items()],
        profiled_ms=profiled,
        outside_ops_ms=OUTSIDE_OPS_MS,
        plain_ms=profiled / (1 + PROFILER_OVERHEAD),
        profiler_overhead=PROFILER_OVERHEAD,
    )


def validity(verdict: str, *reasons: str, warmup_runs: int = 10) -> Validity:
    """A verdict whose causes follow from its reasons (a governor's, or noise)."""
    return Validity(
        verdict=verdict,
        reasons=list(reasons),
        causes=["governor" if "governor" in r else "noise" for r in reasons],
        unchecked=["throttling (no thermal_throttle counters, no vcgencmd)"],
        warmup_runs=warmup_runs,
    )


GOVERNOR = "CPU governor is 'powersave', not 'performance' (the clock follows the load)"
"""The reason a fake device gives for its unstable last session (every model shares it)."""


def device_run(name: str, models: list[ModelRun], block: int = 10, sessions: int = 10) -> DeviceRun:
    """The run of ``models`` on a device warming from 45 to 52.5 °C whose clock falls from
    1800 to 1500 MHz; every session stable but the last, where the governor let go."""
    rounds = [[m.name for m in models] for _ in range(len(models[0].samples_ms) // block)]
    temps = np.linspace(45.0, 52.5, 2 * sessions)
    clocks = np.linspace(1800.0, 1500.0, 2 * sessions)
    stable: list[Validity | None] = [validity("stable") for _ in models]
    return DeviceRun(
        target={"name": name, "kind": "fake"},
        models=models,
        rounds=rounds,
        before=Conditions(45.0, 1800.0),
        after=Conditions(52.5, 1500.0),
        wall_s=1.5,
        environment=Environment(
            hostname=name,
            arch="aarch64",
            cpu_model="Cortex-A76",
            logical_cores=4,
            usable_cores=4,
            total_memory_mb=8000.0,
            os="Debian",
            python="3.11.2",
        ),
        validity=[*[stable] * (sessions - 1), [validity("unstable", GOVERNOR) for _ in models]],
        conditions=[
            Conditions(float(t), float(c), device_state(i, last=i == 2 * sessions - 1))
            for i, (t, c) in enumerate(zip(temps, clocks, strict=True))
        ],
    )


def device_state(i: int, last: bool) -> DeviceState:
    """The ``i``-th snapshot (before 1, after 1, before 2...): 40 preemptions, 0.01 s
    waited for a CPU in 2 s and one throttle event a window; at the very end the governor
    is ``powersave`` and the Pi's bits say it throttled."""
    return DeviceState(
        governors=["powersave" if last else "performance"],
        throttle_counts={"cpu0/core_throttle_count": (i + 1) // 2},
        rpi_throttled=0x50000 if last else 0,
        preemptions=1000 + 40 * i,
        run_delay_s=0.01 * i,
        at_s=2.0 * i,
    )


def report(
    devices: int = 1,
    config: ABConfig | None = None,
    seed: int = 0,
    gates: bool = True,
    labelled: bool = True,
) -> ABReport:
    """A base and two variants (faster & smaller, and the same) on ``devices`` devices,
    with quality data (``labelled``: with labels) and operator profiles (int8's
    convolutions quantized); analysed by the real code."""
    from edgeship.ab.gates import make_gate
    from edgeship.ab.schedule import Schedule

    config = config or ABConfig(
        schedule=Schedule(runs=300, sessions=10, block=10),
        gates=(make_gate("min-speedup", 1.3), make_gate("max-memory-ratio", 0.9)) if gates else (),
    )
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=200)
    logits = rng.normal(size=(200, 10))
    logits[np.arange(200), labels] += 3.0
    given = labels if labelled else None
    runs = []
    for d in range(devices):
        drift = 1 + 0.1 * np.linspace(0, 1, 10) + d
        runs.append(
            device_run(
                f"pi-{d}",
                [
                    model_run(
                        "fp32",
                        latencies(rng, 10.0, drift=drift),
                        "base",
                        4000,
                        120.0,
                        logits,
                        given,
                    ),
                    model_run(
                        "int8",
                        latencies(rng, 5.0, drift=drift),
                        "variant",
                        1000,
                        100.0,
                        logits + rng.normal(0, 0.3, logits.shape),
                        given,
                    ),
                    model_run(
                        "same",
                        latencies(rng, 10.0, drift=drift),
                        "variant",
                        4000,
                        121.0,
                        logits,
                        given,
                    ),
                ],
            )
        )
    for run in runs:
        fp32, int8, same = run.models
        fp32.ops = same.ops = op_profile(Conv=6.0, Gemm=2.0, Relu=0.5)
        int8.ops = op_profile(ConvInteger=2.5, DynamicQuantizeLinear=0.4, Gemm=1.2, Relu=0.4)
    prep = Prepared(["fp32", "int8", "same"], [], [None] * 3, [None] * 3, False)
    return build_report(prep, runs, [], config)
