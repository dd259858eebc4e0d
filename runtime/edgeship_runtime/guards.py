"""Validity guards: the device's clock and heat around a timed window, and the verdict.

A figure from a throttled board, a ``powersave`` governor or a noisy run looks as solid as
a good one. :func:`snapshot` reads what the device says about its clock and heat (before
and after the window); :func:`judge` turns the samples and the two snapshots into a
``stable``/``unstable`` verdict with every reason, the way pyperf judges its runs:

- the spread: std ≥ 10 % of the mean, or min or max ≥ 50 % away from the mean, judged
  as pyperf judges its values, on :data:`VALUES` values each of consecutive runs, not
  on single runs; each value the *median* of its runs, as the headline figure is: on a
  quiet 2-core VM one stall of the whole VM (~35 ms) inside a value of 50 ms of the
  zoo MLP's runs moved that value's mean by 70 % and the window's p50 not at all (4 in
  10 windows were flagged so), while a slower half of the window moves the medians too;
- a shift: the mean of the window's second half of values is 15 % or more away from the
  first half's, beyond the noise of either (three standard errors of their difference:
  many windows are judged, few may be flagged by chance): something changed mid-window
  that no clock reading showed (a step of 15-20 % leaves the std of the values under
  10 %). Not tighter: a quiet shared 2-core VM's half-second figures wander ±9 %, its
  window halves up to 10-12 % apart;
- the clock: the governor is not ``performance``; a CPU's clock or its cap moved by more
  than 10 % between the two snapshots; the power mode changed (Jetson ``nvpmodel``);
- throttling: a kernel ``thermal_throttle`` counter rose, or ``vcgencmd get_throttled``
  says throttled, capped or under-voltage (Raspberry Pi);
- contention: the runtime's threads waited for a CPU (the kernel's run-queue delay,
  ``/proc/self/task/*/schedstat``) for 10 % or more of the window, or the hypervisor gave
  its CPUs to other guests (``steal`` in ``/proc/stat``) for 5 % or more of their time.
  Measured on a 2-core VM, 1 s windows of the zoo MLP and CNN at 1 and 2 threads: quiet
  0.0-5.6 %, one CPU hog per core 21-100 %. Where the kernel has no schedstat, the
  preemption count (``getrusage``) stands in: 50 or more a second (quiet 1-39/s with
  ONNX Runtime's spinning pool, a hog 64-254/s). Not the share of runs in a slow tail:
  sub-millisecond models on a quiet machine put 20-40 % of their runs over 1.5× the
  median (thread wake-ups, timer ticks), and as many with a hog: it told nothing;
- the timer: a median run shorter than 100 steps of the clock's measured resolution;
- the warm-up: the rolling median had not settled when timing began.

Every reason has a cause (:data:`CAUSES`: ``noise``, ``contention``, ``governor``,
``heat``, ``timer``, ``warmup``), which the views turn into one line per model: the cause
in words and what to do about it. What cannot be read here is listed as unchecked, never
taken as fine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import sysfs
from .environment import thermal_zones, usable_cores
from .report import Cooldown, DeviceState, Validity

STABLE = "stable"
UNSTABLE = "unstable"

STD_LIMIT = 0.10
"""Std over mean at or above which the samples are too spread."""
SPREAD_LIMIT = 0.50
"""Distance of the min or max from the mean, over the mean, at or above which a value is an
outlier that moves the mean."""
SHIFT_LIMIT = 0.15
"""Relative move of the mean between the window's halves taken as a shift."""
VALUES = 20
"""How many values the spread is judged on: each the median of ``n // VALUES`` consecutive
runs (single runs when there are fewer than two per value)."""
CLOCK_CHANGE_LIMIT = 0.10
"""Relative change of a CPU's clock (or its cap) between the snapshots taken as a change."""
WAIT_LIMIT = 0.10
"""Share of the window the runtime's threads spent waiting for a CPU (their run-queue
delay, summed) at or above which its CPUs were contended: on a quiet 2-core VM up to 5.6 %
(ONNX Runtime's two threads beside the kernel's own), with a CPU hog 21 % and more."""
STEAL_LIMIT = 0.05
"""Share of its CPUs' time the hypervisor gave to other guests at or above which they were
contended."""
PREEMPTION_RATE = 50.0
"""Where there is no schedstat: involuntary context switches of the runtime per second of
window taken as contention."""
MIN_PREEMPTIONS = 20
"""Fewer than this many in a window are never contention (short windows)."""
MIN_CLOCK_STEPS = 100
"""A median run must last at least this many steps of the timer's resolution."""

STEADY_WINDOW = 5
"""Warm-up runs per window: settled when two consecutive windows' medians agree."""
STEADY_TOLERANCE = 0.05
"""How closely (relative) the medians of the last two warm-up windows must agree."""

CAUSES: Dict[str, Tuple[str, str]] = {
    "noise": (
        "the runs' times spread or moved",
        "close other work, or time longer with --min-seconds",
    ),
    "contention": (
        "other processes took the runtime's CPUs",
        "close other work, or pin the runtime to free CPUs with --cpus",
    ),
    "governor": (
        "the CPU clock follows the load (governor not 'performance')",
        "set the governor to performance (cpupower frequency-set -g performance)",
    ),
    "heat": (
        "the device throttled, or its clock or power mode changed",
        "let it cool first with --cooldown TEMP_C, or cool it better",
    ),
    "timer": ("one run is too short for the clock", "time a bigger batch per run (--shape)"),
    "warmup": ("the warm-up did not settle", "a longer warm-up (--warmup N)"),
}
"""Cause → (what happened, in words; the remedy)."""

Judged = List[Tuple[str, str]]
"""(cause, reason) pairs: the reason with its key in :data:`CAUSES`."""

_RPI_NOW = {0: "under-voltage", 1: "ARM clock capped", 2: "throttled", 3: "soft temperature limit"}
_COMMAND_TIMEOUT_S = 2.0
_resolution_ns: Optional[float] = None


# ------------------------------------------------------------------------------ reading


def snapshot() -> DeviceState:
    """The device's heat, clocks and throttling state now."""
    cpus = [f"cpu{i}" for i in _cpus()]
    zones = thermal_zones()
    governors = {sysfs.read_text(_cpufreq(cpu, "scaling_governor")) for cpu in cpus}
    return DeviceState(
        temperature_c=max(zones.values()) if zones else None,
        thermal_zones=zones,
        governors=sorted(g for g in governors if g),
        cur_freq_mhz=_freqs(cpus, "scaling_cur_freq"),
        max_freq_mhz=_freqs(cpus, "scaling_max_freq"),
        hw_max_freq_mhz=_freqs(cpus, "cpuinfo_max_freq"),
        throttle_counts=_throttle_counts(cpus),
        rpi_throttled=_rpi_throttled(),
        jetson_power_mode=_jetson_power_mode(),
        devfreq_mhz=_devfreq(),
        preemptions=_preemptions(),
        run_delay_s=_run_delay_s(),
        steal_s=_steal_s(),
        at_s=time.monotonic(),
    )


def _preemptions() -> Optional[int]:
    try:
        import resource  # Unix only
    except ImportError:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw)


def _run_delay_s() -> Optional[float]:
    """Seconds this process's threads have waited on a run queue so far (the second field of
    each ``/proc/self/task/*/schedstat``); None where the kernel keeps no schedstat."""
    total_ns = 0
    found = False
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                total_ns += int(f.read().split()[1])
            found = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile, or no schedstat
    return total_ns / 1e9 if found else None


def _steal_s() -> Optional[float]:
    """Seconds of steal (the hypervisor running other guests) so far per CPU this process
    may use, their mean, from ``/proc/stat``; None where it has no steal column. Per CPU
    when read, so a judge outside a ``--cpus`` pinning compares like with like."""
    wanted = {f"cpu{i}" for i in _cpus()}
    total = 0
    found = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] in wanted and len(fields) > 8:
                    total += int(fields[8])
                    found += 1
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return total / ticks / found if found else None


def _cpus() -> List[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(usable_cores()))


def _cpufreq(cpu: str, name: str) -> str:
    return sysfs.sys_path("devices", "system", "cpu", cpu, "cpufreq", name)


def _freqs(cpus: Sequence[str], name: str) -> Dict[str, float]:
    """A cpufreq value (kHz in /sys) per CPU, in MHz."""
    found: Dict[str, float] = {}
    for cpu in cpus:
        khz = sysfs.read_int(_cpufreq(cpu, name))
        if khz is not None:
            found[cpu] = khz / 1000.0
    return found


def _throttle_counts(cpus: Sequence[str]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for cpu in cpus:
        pattern = ("devices", "system", "cpu", cpu, "thermal_throttle", "*_count")
        for path in sysfs.sys_glob(*pattern):
            value = sysfs.read_int(path)
            if value is not None:
                counts[f"{cpu}/{os.path.basename(path)}"] = value
    return counts


def _devfreq() -> Dict[str, float]:
    """devfreq devices (GPU, memory controller) by name, their current clock in MHz."""
    found: Dict[str, float] = {}
    for device in sysfs.sys_glob("class", "devfreq", "*"):
        hz = sysfs.read_int(os.path.join(device, "cur_freq"))
        if hz is not None:
            found[os.path.basename(device)] = hz / 1e6
    return found


def _command(argv: Sequence[str]) -> Optional[str]:
    """The output of a board tool where it is installed; None otherwise or on failure."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _rpi_throttled() -> Optional[int]:
    """``vcgencmd get_throttled`` (``throttled=0x50005``) as an integer."""
    text = _command(("vcgencmd", "get_throttled"))
    if not text or "=" not in text:
        return None
    try:
        return int(text.split("=", 1)[1], 16)
    except ValueError:
        return None


def _jetson_power_mode() -> Optional[str]:
    """``nvpmodel -q``'s first line (``NV Power Mode: MAXN``), without the label."""
    text = _command(("nvpmodel", "-q"))
    if not text:
        return None
    return text.splitlines()[0].split(":", 1)[-1].strip() or None


def clock_resolution_ns() -> float:
    """The smallest step ``perf_counter_ns`` takes here, measured (and never below what
    the clock reports); measured once per process."""
    global _resolution_ns
    if _resolution_ns is None:
        steps = []
        last = time.perf_counter_ns()
        for _ in range(2000):
            now = time.perf_counter_ns()
            if now > last:
                steps.append(now - last)
            last = now
        reported = time.get_clock_info("perf_counter").resolution * 1e9
        _resolution_ns = float(max(min(steps) if steps else reported, reported))
    return _resolution_ns


# ------------------------------------------------------------------------------ judging


def sample_reasons(samples_ms: Sequence[float], resolution_ns: float) -> List[str]:
    """Why these samples do not make a trustworthy figure (none: they do)."""
    return [reason for _, reason in _judge_samples(samples_ms, resolution_ns)]


def _judge_samples(samples_ms: Sequence[float], resolution_ns: float) -> Judged:
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        return [("noise", "no samples")]
    found = [("noise", r) for r in spread_reasons(a)]
    if a.size >= 2 * VALUES:
        found += [("noise", r) for r in shift_reasons(a)]
    median_ns = float(np.median(a)) * 1e6
    if median_ns < MIN_CLOCK_STEPS * resolution_ns:
        found.append(
            (
                "timer",
                f"median run {median_ns / 1000:.3g} µs is under {MIN_CLOCK_STEPS} steps of "
                f"the clock ({resolution_ns:.0f} ns each): too short to time one run at a time",
            )
        )
    return found


def window_values(a: np.ndarray) -> Tuple[np.ndarray, int]:
    """The window as :data:`VALUES` medians of consecutive runs (the single runs when there
    are fewer than two per value), and how many runs each value is the median of."""
    per_value = a.size // VALUES if a.size >= 2 * VALUES else 1
    chunks = a[: a.size - a.size % per_value].reshape(-1, per_value)
    return np.median(chunks, axis=1), per_value


def spread_reasons(a: np.ndarray) -> List[str]:
    """The spread of the window's values (medians of consecutive runs) around their mean."""
    values, per_value = window_values(a)
    return _spread(values, per_value, " ms")


def _spread(values: np.ndarray, per_value: int, unit: str) -> List[str]:
    mean = float(values.mean())
    if values.size < 2 or mean <= 0:
        return []
    of = "runs" if per_value == 1 else f"{values.size} medians of {per_value} consecutive runs"
    what = "run" if per_value == 1 else f"{per_value}-run median"
    reasons = []
    std = float(values.std(ddof=1))
    if std >= STD_LIMIT * mean:
        reasons.append(
            f"the std of {of} is {std:.3g}{unit}, {100 * std / mean:.0f} % of their mean "
            f"{mean:.3g}{unit} (limit {100 * STD_LIMIT:.0f} %)"
        )
    high, low = float(values.max()), float(values.min())
    if high - mean >= SPREAD_LIMIT * mean:
        reasons.append(
            f"max {high:.3g}{unit} is {100 * (high / mean - 1):.0f} % above the mean "
            f"(slowest {what})"
        )
    if mean - low >= SPREAD_LIMIT * mean:
        reasons.append(
            f"min {low:.3g}{unit} is {100 * (1 - low / mean):.0f} % below the mean (fastest {what})"
        )
    return reasons


def shift_reasons(a: np.ndarray) -> List[str]:
    """Whether the mean moved between the window's halves (of its values), beyond the noise
    of either."""
    return _shift(window_values(a)[0], " ms")


def _shift(values: np.ndarray, unit: str) -> List[str]:
    first, second = values[: values.size // 2], values[values.size // 2 :]
    if first.size < 2 or second.size < 2:
        return []
    m1, m2 = float(first.mean()), float(second.mean())
    if m1 <= 0 or abs(m2 - m1) < SHIFT_LIMIT * m1:
        return []
    noise = 3.0 * float(np.sqrt(first.var(ddof=1) / first.size + second.var(ddof=1) / second.size))
    if abs(m2 - m1) <= noise:
        return []
    return [
        f"the mean moved {100 * (m2 / m1 - 1):+.0f} % between the window's halves "
        f"({m1:.3g} → {m2:.3g}{unit}; limit {100 * SHIFT_LIMIT:.0f} %)"
    ]


def paired_reasons(reference_ms: Sequence[float], samples_ms: Sequence[float]) -> List[str]:
    """The spread and shift rules on the ratio of ``samples_ms``' values to
    ``reference_ms``' (two models timed in the same interleaved rounds, run ``j`` of each
    in the same round): what moved one model against the other. A drift of the machine's
    speed moves both alike and cancels here, as it does in an A/B's session ratio."""
    n = min(len(reference_ms), len(samples_ms))
    if n == 0:
        return []
    reference, per_value = window_values(np.asarray(reference_ms[:n], dtype=np.float64))
    values, _ = window_values(np.asarray(samples_ms[:n], dtype=np.float64))
    if np.any(reference <= 0):
        return []
    ratio = values / reference
    return _spread(ratio, per_value, "×") + (_shift(ratio, "×") if n >= 2 * VALUES else [])


def state_reasons(before: DeviceState, after: DeviceState) -> Tuple[List[str], List[str]]:
    """(reasons the device's state makes the window untrustworthy, what could not be
    checked here)."""
    found, unchecked = _judge_state(before, after)
    return [reason for _, reason in found], unchecked


def _judge_state(before: DeviceState, after: DeviceState) -> Tuple[Judged, List[str]]:
    found: Judged = []
    unchecked: List[str] = []
    governors = sorted(set(before.governors) | set(after.governors))
    if not governors:
        unchecked.append("CPU governor (no cpufreq in /sys)")
    elif governors != ["performance"]:
        names = ", ".join(repr(g) for g in governors if g != "performance")
        found.append(
            ("governor", f"CPU governor is {names}, not 'performance' (the clock follows the load)")
        )
    if not before.cur_freq_mhz or not after.cur_freq_mhz:
        unchecked.append("CPU clock (no scaling_cur_freq)")
    heat = _moved("CPU clock", before.cur_freq_mhz, after.cur_freq_mhz)
    heat += _moved("CPU clock cap", before.max_freq_mhz, after.max_freq_mhz)
    rose = {
        k: v - before.throttle_counts[k]
        for k, v in after.throttle_counts.items()
        if k in before.throttle_counts and v > before.throttle_counts[k]
    }
    if rose:
        which = ", ".join(f"{k} +{n}" for k, n in sorted(rose.items())[:3])
        heat.append(f"the CPU was thermally throttled during the window ({which})")
    heat += _rpi_reasons(before.rpi_throttled, after.rpi_throttled)
    if not after.throttle_counts and after.rpi_throttled is None:
        unchecked.append("throttling (no thermal_throttle counters, no vcgencmd)")
    if before.jetson_power_mode != after.jetson_power_mode:
        heat.append(
            f"the power mode changed during the window "
            f"({before.jetson_power_mode} → {after.jetson_power_mode})"
        )
    found += [("heat", r) for r in heat]
    if before.temperature_c is None:
        unchecked.append("temperature (no thermal zone)")
    contention = _contention(before, after)
    if contention is None:
        unchecked.append("CPU contention (no schedstat, no getrusage)")
    elif contention:
        found.append(("contention", contention))
    return found, unchecked


def _contention(before: DeviceState, after: DeviceState) -> Optional[str]:
    """Why the runtime's CPUs were contended during the window ("" if they were not);
    None where it cannot be told."""
    if before.at_s is None or after.at_s is None:
        return None
    seconds = after.at_s - before.at_s
    if seconds <= 0:
        return ""
    reasons = []
    if before.steal_s is not None and after.steal_s is not None:
        share = max(after.steal_s - before.steal_s, 0.0) / seconds
        if share >= STEAL_LIMIT:
            reasons.append(
                f"the hypervisor gave the CPUs to other guests for {100 * share:.0f} % of the "
                f"{seconds:.1f} s window (steal time; limit {100 * STEAL_LIMIT:.0f} %)"
            )
    wait = after.cpu_wait_since(before)
    if wait is not None:
        waited, seconds = wait
        if waited >= WAIT_LIMIT * seconds:
            reasons.append(
                f"the runtime's threads waited {waited:.2f} s for a CPU in the {seconds:.1f} s "
                f"window ({100 * waited / seconds:.0f} % of it, limit {100 * WAIT_LIMIT:.0f} %): "
                "other processes, or more busy threads than CPUs, took its CPUs"
            )
        return "; ".join(reasons)
    if before.preemptions is None or after.preemptions is None:
        return "; ".join(reasons) if reasons else None
    count = after.preemptions - before.preemptions
    rate = count / seconds
    if count >= MIN_PREEMPTIONS and rate >= PREEMPTION_RATE:
        reasons.append(
            f"the runtime was preempted {count} times in the {seconds:.1f} s window "
            f"({rate:.0f}/s, limit {PREEMPTION_RATE:.0f}/s): another process competed for "
            "its CPUs"
        )
    return "; ".join(reasons)


def _moved(what: str, before: Dict[str, float], after: Dict[str, float]) -> List[str]:
    moved = [
        f"{cpu} {before[cpu]:.0f} → {mhz:.0f} MHz"
        for cpu, mhz in after.items()
        if before.get(cpu) and abs(mhz - before[cpu]) > CLOCK_CHANGE_LIMIT * before[cpu]
    ]
    if not moved:
        return []
    more = f" and {len(moved) - 3} more" if len(moved) > 3 else ""
    return [f"{what} changed during the window ({', '.join(moved[:3])}{more})"]


def _rpi_reasons(before: Optional[int], after: Optional[int]) -> List[str]:
    if after is None:
        return []
    now = [name for bit, name in _RPI_NOW.items() if after & (1 << bit)]
    new = [
        name
        for bit, name in _RPI_NOW.items()
        if after & (1 << (bit + 16)) and not (before or 0) & (1 << (bit + 16))
    ]
    reasons = []
    if now:
        reasons.append(f"the Pi reports {', '.join(now)} now (get_throttled={after:#x})")
    if new:
        reasons.append(f"the Pi was {', '.join(new)} during the window (get_throttled={after:#x})")
    return reasons


def explain(causes: Sequence[str]) -> str:
    """The causes in words and what to do about them, in one line:
    ``another process competed for the runtime's CPUs → close other work, or ...``."""
    known = [c for c in dict.fromkeys(causes) if c in CAUSES]
    if not known:
        return ""
    words = "; ".join(CAUSES[c][0] for c in known)
    remedies = dict.fromkeys(part for c in known for part in CAUSES[c][1].split(", or "))
    return f"{words} → {', or '.join(remedies)}"


def drift(samples_ms: Sequence[float], window: int = STEADY_WINDOW) -> Optional[float]:
    """Relative change between the medians of the last two ``window``-run windows; None
    until there are two windows."""
    if len(samples_ms) < 2 * window:
        return None
    last = float(np.median(samples_ms[-window:]))
    previous = float(np.median(samples_ms[-2 * window : -window]))
    return abs(last - previous) / previous if previous > 0 else 0.0


def judge(
    samples_ms: Sequence[float],
    before: DeviceState,
    after: DeviceState,
    warmup_runs: int = 0,
    warmup_settled: Optional[bool] = None,
    warmup_drift: Optional[float] = None,
) -> Validity:
    """The verdict on one timed window."""
    resolution = clock_resolution_ns()
    found = _judge_samples(samples_ms, resolution)
    device, unchecked = _judge_state(before, after)
    found += device
    if warmup_settled is False:
        moved = (
            f": its rolling median still moved {100 * warmup_drift:.0f} %" if warmup_drift else ""
        )
        found.append(("warmup", f"the warm-up did not settle in {warmup_runs} runs{moved}"))
    return Validity(
        verdict=UNSTABLE if found else STABLE,
        reasons=[reason for _, reason in found],
        causes=[cause for cause, _ in found],
        unchecked=unchecked,
        warmup_runs=warmup_runs,
        warmup_settled=warmup_settled,
        clock_resolution_ns=resolution,
        before=before,
        after=after,
    )


def with_cooldown(validity: Validity, cooldown: Cooldown) -> Validity:
    """``validity`` with the cooldown before it recorded; not reaching it is a reason."""
    validity.cooldown = cooldown
    if cooldown.reached is False:
        validity.reasons.append(
            f"the cooldown below {cooldown.below_c:g} °C was not reached in "
            f"{cooldown.timeout_s:g} s (still {cooldown.end_c:.1f} °C)"
        )
        validity.causes.append("heat")
        validity.verdict = UNSTABLE
    elif cooldown.reached is None:
        validity.unchecked.append("cooldown (no thermal zone to read)")
    return validity
