"""Validity guards: the verdict's reasons, the device snapshot, the steady warm-up."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime import guards
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.measure import MeasurePolicy, profile, warm_up
from edgeship_runtime.model import load_model
from edgeship_runtime.report import Cooldown, DeviceState
from tests.runtime.fake_sysfs import FakeSys
from tests.runtime.test_measure import FEEDS, SIG, fake_model

CPUS = sorted(os.sched_getaffinity(0))
QUIET = DeviceState(
    temperature_c=50.0,
    governors=["performance"],
    cur_freq_mhz={"cpu0": 1800.0},
    max_freq_mhz={"cpu0": 1800.0},
    throttle_counts={"cpu0/core_throttle_count": 3},
    preemptions=7,
    at_s=100.0,
)


def state(**changes: object) -> DeviceState:
    return DeviceState(**{**QUIET.__dict__, **changes})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ samples


def test_tight_samples_have_no_reason() -> None:
    rng = np.random.default_rng(0)
    assert guards.sample_reasons(1.0 + 0.01 * rng.standard_normal(200), 50.0) == []


def test_a_spread_over_10_percent_is_a_reason() -> None:
    rng = np.random.default_rng(0)
    drifting = np.linspace(0.8, 1.2, 500) + 0.05 * rng.standard_normal(500)
    (reason,) = [r for r in guards.sample_reasons(drifting, 50.0) if "std" in r]
    assert reason.startswith("the std of 20 medians of 25 consecutive runs is ")
    assert "% of their mean" in reason and "limit 10 %" in reason


def test_noise_that_averages_out_is_no_reason_nor_a_bimodal_window() -> None:
    """A sub-millisecond model's runs on a quiet machine: a quarter of them slow (a thread
    pool's wake-ups) all through the window; contention is judged from the run queue."""
    rng = np.random.default_rng(0)
    assert guards.sample_reasons(1.0 + 0.15 * rng.standard_normal(6000), 50.0) == []
    bimodal = np.where(rng.random(6000) < 0.25, 2.5, 1.0)
    assert guards.sample_reasons(bimodal, 50.0) == []


def test_a_stall_of_the_whole_vm_inside_one_value_is_no_reason() -> None:
    """The zoo MLP on a quiet 2-core VM: ~920 runs of 0.054 ms a value, one of them held up
    35 ms (the VM descheduled). That value's mean rose 70 %; its median, like the p50, did
    not move."""
    rng = np.random.default_rng(4)
    samples = 0.054 + 0.004 * rng.standard_normal(18_400)
    samples[5000] = 35.0
    assert guards.sample_reasons(samples, 50.0) == []


def test_the_issues_example_is_judged_unstable() -> None:
    """p50 0.48 ms, p90 4.5 ms, a std larger than the mean (seen under load)."""
    samples = [0.48] * 85 + [4.5] * 15
    reasons = guards.sample_reasons(samples, 50.0)
    assert any(r.startswith("the std of 20 medians of 5 consecutive runs is ") for r in reasons)
    assert any(r.startswith("max 4.5 ms is") and "above the mean" in r for r in reasons)


def test_one_outlier_moves_no_median_but_a_short_window_is_judged_run_by_run() -> None:
    assert guards.sample_reasons([1.0] * 99 + [60.0], 50.0) == []  # 20 medians of 5 runs
    slow = guards.sample_reasons([1.0] * 90 + [3.0] * 10, 50.0)  # its last two values
    assert any(r.startswith("max 3 ms") and "(slowest 5-run median)" in r for r in slow)
    low = guards.sample_reasons([1.0] * 30 + [0.01], 50.0)  # too few runs: judged one by one
    assert any(r.startswith("min 0.01 ms") and "(fastest run)" in r for r in low)


def test_one_stall_among_thousands_of_runs_is_no_reason() -> None:
    """A scheduler stall of 40 runs' length does not move a 6,000-run figure (pyperf
    judges values that are means of many loops, not single loops)."""
    rng = np.random.default_rng(1)
    samples = 0.4 + 0.004 * rng.standard_normal(6000)
    samples[4321] = 16.0
    assert guards.sample_reasons(samples, 50.0) == []


def test_a_slower_second_half_is_a_reason() -> None:
    """A disturbance from half-way (a CPU hog, a quota cut) moves whole values."""
    spread, shift = guards.sample_reasons([0.4] * 3000 + [0.6] * 3000, 50.0)
    assert spread.startswith("the std of 20 medians of 300 consecutive runs is ")
    assert shift.startswith("the mean moved +50 % between the window's halves (0.4 → 0.6")


def test_runs_too_short_for_the_clock() -> None:
    (reason,) = guards.sample_reasons([0.002] * 50, resolution_ns=100.0)  # 2 µs, 100 ns steps
    assert "under 100 steps of the clock (100 ns each)" in reason


def test_clock_resolution_is_measured_and_positive() -> None:
    assert 0 < guards.clock_resolution_ns() < 1e7


# ------------------------------------------------------------------------------ state


def test_a_quiet_device_has_no_reason() -> None:
    assert guards.state_reasons(QUIET, QUIET) == ([], [])


@pytest.mark.parametrize(
    ("after", "needle"),
    [
        (state(governors=["powersave"]), "governor is 'powersave', not 'performance'"),
        (state(cur_freq_mhz={"cpu0": 600.0}), "CPU clock changed during the window (cpu0 1800"),
        (state(max_freq_mhz={"cpu0": 1500.0}), "CPU clock cap changed"),
        (state(throttle_counts={"cpu0/core_throttle_count": 5}), "thermally throttled"),
        (state(rpi_throttled=0x4), "the Pi reports throttled now"),
        (state(rpi_throttled=0x20000), "the Pi was ARM clock capped during the window"),
        (state(jetson_power_mode="5W"), "power mode changed"),
    ],
)
def test_state_reasons(after: DeviceState, needle: str) -> None:
    reasons, _ = guards.state_reasons(QUIET, after)
    assert any(needle in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("after", "needle"),
    [
        (state(run_delay_s=0.22, at_s=101.0), "threads waited 0.21 s for a CPU in the 1.0 s"),
        (state(steal_s=10.5, at_s=101.0), "other guests for "),
    ],
)
def test_contention_from_the_run_queue_and_steal(after: DeviceState, needle: str) -> None:
    reasons, _ = guards.state_reasons(state(run_delay_s=0.01, steal_s=10.0), after)
    assert any(needle in r for r in reasons), reasons


def test_waits_under_5_percent_are_no_contention_nor_are_preemptions_with_schedstat() -> None:
    """A quiet 2-core VM: up to 5.6 % waited, and 39 preemptions a second from a spinning
    thread pool; the run queue says the CPUs were (nearly) free."""
    quiet = state(run_delay_s=0.066, preemptions=46, at_s=101.0)
    assert guards.state_reasons(state(run_delay_s=0.01), quiet) == ([], [])


def test_preemptions_stand_in_where_there_is_no_schedstat() -> None:
    assert guards.state_reasons(QUIET, state(preemptions=46, at_s=101.0)) == ([], [])
    reasons, _ = guards.state_reasons(QUIET, state(preemptions=207, at_s=101.0))
    assert any("preempted 200 times in the 1.0 s window (200/s, limit 50/s)" in r for r in reasons)


def test_snapshot_reads_this_process_run_queue_delay() -> None:
    seen = guards.snapshot()
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/schedstat"):
        pytest.skip("this kernel keeps no schedstat")
    assert seen.run_delay_s is not None and seen.run_delay_s >= 0


def test_a_small_clock_wobble_is_no_change() -> None:
    assert guards.state_reasons(QUIET, state(cur_freq_mhz={"cpu0": 1750.0})) == ([], [])


def test_what_cannot_be_read_is_unchecked_not_fine() -> None:
    reasons, unchecked = guards.state_reasons(DeviceState(), DeviceState())
    assert reasons == []
    assert [u.split(" (")[0] for u in unchecked] == [
        "CPU governor",
        "CPU clock",
        "throttling",
        "temperature",
        "CPU contention",
    ]


def test_snapshot_reads_the_fake_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSys(tmp_path)
    for n in CPUS:
        fake.cpu(n, governor="schedutil", cur_khz=1_200_000)
        fake.write(f"devices/system/cpu/cpu{n}/thermal_throttle/core_throttle_count", 7)
    fake.write("class/thermal/thermal_zone0/type", "cpu-thermal")
    fake.write("class/thermal/thermal_zone0/temp", 61234)
    fake.write("class/devfreq/17000000.gpu/cur_freq", 918_000_000)
    fake.use(monkeypatch)
    seen = guards.snapshot()
    assert seen.governors == ["schedutil"]
    assert seen.cur_freq_mhz == {f"cpu{n}": 1200.0 for n in CPUS}
    assert seen.hw_max_freq_mhz["cpu0" if 0 in CPUS else f"cpu{CPUS[0]}"] == 1800.0
    assert seen.throttle_counts[f"cpu{CPUS[0]}/core_throttle_count"] == 7
    assert seen.temperature_c == pytest.approx(61.234)
    assert seen.devfreq_mhz == {"17000000.gpu": 918.0}
    fake.write(f"devices/system/cpu/cpu{CPUS[0]}/thermal_throttle/core_throttle_count", 9)
    reasons, _ = guards.state_reasons(seen, guards.snapshot())
    assert any("governor is 'schedutil'" in r for r in reasons)
    assert any(f"cpu{CPUS[0]}/core_throttle_count +2" in r for r in reasons)


# ------------------------------------------------------------------------------ verdict


def test_judge_stable_and_unstable() -> None:
    good = guards.judge([1.0] * 50, QUIET, QUIET, warmup_runs=10, warmup_settled=True)
    assert (good.verdict, good.reasons, good.warmup_runs) == ("stable", [], 10)
    bad = guards.judge([1.0] * 50, QUIET, state(governors=["powersave"]), 200, False, 0.2)
    assert bad.verdict == "unstable"
    assert "the warm-up did not settle in 200 runs: its rolling median still moved 20 %" in (
        bad.reasons
    )


def test_a_cooldown_not_reached_makes_it_unstable() -> None:
    validity = guards.judge([1.0] * 20, QUIET, QUIET)
    missed = Cooldown(below_c=60.0, timeout_s=30.0, waited_s=30.1, start_c=75.0, end_c=71.5,
                      reached=False)  # fmt: skip
    guards.with_cooldown(validity, missed)
    assert validity.verdict == "unstable"
    assert validity.reasons == ["the cooldown below 60 °C was not reached in 30 s (still 71.5 °C)"]


# ------------------------------------------------------------------------------ warm-up


class Slowing:
    """A session whose runs take ``times_s[i]`` seconds, then the last value forever."""

    signature = SIG

    def __init__(self, times_s: list[float]) -> None:
        self.times_s = times_s
        self.calls = 0

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        delay = self.times_s[min(self.calls, len(self.times_s) - 1)]
        self.calls += 1
        end = time.perf_counter() + delay
        while time.perf_counter() < end:
            pass
        return [feeds["x"]]

    def execution(self) -> dict[str, list[str]]:
        return {"providers": []}

    def close(self) -> None:
        pass


def test_the_warm_up_goes_on_until_the_median_settles() -> None:
    cold = [0.004 * 0.9**i for i in range(21)]  # 10 % faster each run, then steady
    session = Slowing(cold)
    record = warm_up(fake_model(session), FEEDS, MeasurePolicy(warmup=5))  # type: ignore[arg-type]
    assert record.settled is True
    assert record.runs >= 25  # past the speeding-up runs, into the steady ones
    assert record.runs == session.calls


def test_a_fixed_warm_up_runs_exactly_warmup() -> None:
    session = Slowing([0.004] * 12 + [0.001])
    policy = MeasurePolicy(warmup=3, steady=False)
    record = warm_up(fake_model(session), FEEDS, policy)  # type: ignore[arg-type]
    assert (record.runs, record.settled, session.calls) == (3, None, 3)


def test_a_warm_up_that_never_settles_stops_at_its_limit() -> None:
    session = Slowing([0.00005 * 1.2**i for i in range(40)])  # 20 % slower every run
    policy = MeasurePolicy(warmup=2, max_warmup_runs=30)
    record = warm_up(fake_model(session), FEEDS, policy)  # type: ignore[arg-type]
    assert record.settled is False and record.runs == 30


def test_a_profile_carries_its_verdict(add_onnx: Path) -> None:
    model = load_model(str(add_onnx))
    feeds = generate_feeds(model.session.signature, {"x": (64, 4)})
    report = profile(model, feeds, MeasurePolicy(warmup=10, runs=50, min_seconds=0))
    validity = report.validity
    assert validity is not None and validity.verdict in ("stable", "unstable")
    assert validity.warmup_runs >= 10 and validity.before is not None
    assert report.to_dict()["validity"]["verdict"] == validity.verdict


def test_a_median_that_moves_between_the_halves_is_a_reason() -> None:
    """A clock stepping down from 1.8 to 1.5 GHz half-way, where no cpufreq tells it:
    every run 20 % longer, the std of the 20 values still under 10 %."""
    rng = np.random.default_rng(2)
    before = 0.4 + 0.03 * rng.standard_normal(5000)
    after = 0.48 + 0.03 * rng.standard_normal(5000)
    (reason,) = guards.sample_reasons(np.concatenate([before, after]), 50.0)
    assert reason.startswith("the mean moved +20 % between the window's halves (0.4 → 0.48")
    assert reason.endswith("limit 15 %)")
    wander = np.concatenate([before, 0.44 + 0.03 * rng.standard_normal(5000)])  # +10 %: a VM's
    assert guards.sample_reasons(wander, 50.0) == []


def test_a_move_inside_the_noise_of_a_short_window_is_no_reason() -> None:
    rng = np.random.default_rng(3)
    noisy = np.concatenate([1.0 + 3 * rng.random(20), 1.5 + 3 * rng.random(20)])  # +20 %
    assert not [r for r in guards.sample_reasons(noisy, 50.0) if "mean moved" in r]


def test_a_runtime_preempted_often_in_its_window_was_contended() -> None:
    """Without schedstat: a CPU hog per core on a 2-core VM, 64-254 involuntary switches a
    second; quiet, with ONNX Runtime's pool spinning on both cores, up to 39."""
    before = state(preemptions=100, at_s=10.0)
    (reason,) = guards.state_reasons(before, state(preemptions=1100, at_s=14.0))[0]
    assert reason == (
        "the runtime was preempted 1000 times in the 4.0 s window (250/s, limit 50/s): "
        "another process competed for its CPUs"
    )
    assert guards.state_reasons(before, state(preemptions=256, at_s=14.0)) == ([], [])
    assert guards.state_reasons(before, state(preemptions=115, at_s=10.1))[0] == []  # < 20


def test_contention_cannot_be_told_without_getrusage() -> None:
    unread = state(preemptions=None, at_s=None)
    reasons, unchecked = guards.state_reasons(unread, unread)
    assert reasons == [] and unchecked == ["CPU contention (no schedstat, no getrusage)"]


def test_the_snapshot_counts_this_process_preemptions() -> None:
    snap = guards.snapshot()
    assert snap.preemptions is not None and snap.preemptions >= 0 and snap.at_s is not None


def test_a_drift_both_models_share_cancels_in_their_paired_ratio() -> None:
    rng = np.random.default_rng(4)
    ramp = np.linspace(1.0, 1.5, 2000)  # the machine slows by half over the window
    base = 0.025 * ramp * np.exp(rng.normal(0.0, 0.05, 2000))
    variant = 0.050 * ramp * np.exp(rng.normal(0.0, 0.05, 2000))
    assert guards.shift_reasons(base) and guards.shift_reasons(variant)
    assert guards.paired_reasons(base, variant) == []
    alone = 0.050 * np.exp(rng.normal(0.0, 0.05, 2000))  # the other model did not slow
    reasons = guards.paired_reasons(base, alone)
    (shift,) = [r for r in reasons if r.startswith("the mean moved -")]
    assert "×" in shift and "ms" not in " ".join(reasons)
