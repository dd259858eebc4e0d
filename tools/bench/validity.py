"""Validity guards: a quiet run, two disturbed ones, and the A/A false-positive rate.

On ``local`` (the runtime in a subprocess), the zoo CNN on one thread:

1. quiet: a profile of ``--seconds`` of timed runs (steady warm-up); its verdict.
2. CPU hog: the same (a fixed 20-run warm-up, so the window's start is known), with one
   busy-looping process per usable core started half-way through the window.
3. CPU quota: the runtime process moved into a cgroup (``cpu`` controller, v1 or v2)
   allowed 2 cores, cut to 0.2 core half-way through the window (needs root; skipped
   otherwise).
4. A/A: ``edgeship ab`` of the model against itself, ``--repeats`` times (each its own
   seed; 10 sessions of at least 0.5 s per model, at least ``--ab-runs`` timed runs per
   model): how often it says "different"
   (the false-positive rate, with its Wilson 95 % interval), how many sessions the guards
   judged stable, and the rate over the repeats whose every session was stable.
5. The energy meter's cost: a runtime pointed (``EDGESHIP_SYSFS_ROOT``) at a fake /sys
   with a RAPL counter and a sampled hwmon power sensor (so the meter's thread runs, every
   20 ms) profiles the model with energy on and off in alternating rounds: the ratio of
   the p50s (figures only).

Checks (exit 1 when one fails): the disturbed runs are judged unstable; the A/A rate is at
most 5 %; the quiet run is judged stable. The last needs a quiet machine: the load
average is printed before it, and on a shared machine under load the guards say (rightly)
that the run is not to be trusted.

    python tools/bench/validity.py [--seconds 4] [--repeats 100] [--ab-runs 200] [--no-cgroup]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.ab.result import NO_DIFFERENCE  # noqa: E402
from edgeship.ab.runner import ABConfig, run_ab  # noqa: E402
from edgeship.ab.schedule import Schedule  # noqa: E402
from edgeship.ab.stats import StatsPolicy  # noqa: E402
from edgeship.core.config import ProfileConfig  # noqa: E402
from edgeship.models.estimate import wilson  # noqa: E402
from edgeship.targets.local import LocalTarget  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from edgeship_runtime.report import DeviceState, ProfileReport  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402

MAX_FALSE_POSITIVES = 0.05
HOG = "while True: pass"


def profile(target: LocalTarget, model: Path, seconds: float, steady: bool) -> ProfileReport:
    policy = MeasurePolicy(warmup=20, runs=100, min_seconds=seconds, steady=steady)
    return target.profile(model, ProfileConfig(policy=policy, session=SessionOptions(threads=1)))


def show(label: str, report: ProfileReport) -> bool:
    """Print the verdict; whether it was unstable."""
    v, lat = report.validity, report.latency_ms
    assert v is not None
    print(
        f"{label}: {v.verdict} ({lat.n} runs, p50 {lat.p50:.3f} ms, mean {lat.mean:.3f}, "
        f"std {lat.std:.3f}, max {lat.max:.2f}; warm-up {v.warmup_runs} runs; "
        f"{_preempted(v.before, v.after)})"
    )
    for reason in v.reasons:
        print(f"    {reason}")
    return v.verdict == "unstable"


def _preempted(before: DeviceState | None, after: DeviceState | None) -> str:
    """The runtime's involuntary context switches and its threads' wait for a CPU over the
    window, as the guard reads them."""
    if before is None or after is None:
        return "preemptions unread"
    said = []
    if before.preemptions is not None and after.preemptions is not None:
        said.append(f"preempted {after.preemptions - before.preemptions} times")
    wait = after.cpu_wait_since(before)
    if wait is not None:
        said.append(f"waited {wait[0]:.3f} s for a CPU")
    return ", ".join(said) or "preemptions unread"


@contextmanager
def halfway(seconds: float, start: Callable[[], None]) -> Iterator[None]:
    """Call ``start`` ``seconds / 2`` from now (the window starts at once: fixed warm-up)."""
    timer = threading.Timer(seconds / 2, start)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def hogged(target: LocalTarget, model: Path, seconds: float) -> ProfileReport:
    hogs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        hogs.extend(subprocess.Popen([sys.executable, "-c", HOG]) for _ in os.sched_getaffinity(0))

    try:
        with halfway(seconds, start):
            return profile(target, model, seconds, steady=False)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def quota_cut(target: LocalTarget, model: Path, seconds: float) -> ProfileReport | str:
    """The profile with the runtime's CPU quota cut half-way; or why it could not be."""
    from tools.testbed import cpucap
    from tools.testbed._proc import TestbedError

    name = f"validity-bench-{os.getpid()}"
    try:
        group = cpucap.create(name, 2.0)
        cpucap.join(group, int(target.info()["runtime"]["pid"]))
    except TestbedError as exc:
        return str(exc)
    try:
        with halfway(seconds, lambda: cpucap.create(name, 0.2)):
            return profile(target, model, seconds, steady=False)
    finally:
        target.close()  # the runtime leaves the group with its process
        cpucap.remove(group)


def aa(target: LocalTarget, model: Path, args: argparse.Namespace) -> bool:
    different = all_stable = all_stable_different = 0
    sessions = stable_sessions = 0
    for seed in range(args.repeats):
        config = ABConfig(
            schedule=Schedule(runs=args.ab_runs, sessions=10, seed=seed),
            stats=StatsPolicy(seed=seed),
            session=SessionOptions(threads=1),
            memory=False,
        )
        device = run_ab(model, [model], target, config).devices[0]
        said_different = device.comparisons[0].verdict != NO_DIFFERENCE
        stable = [v.verdict == "stable" for v in device.validity]
        different += said_different
        sessions += len(stable)
        stable_sessions += sum(stable)
        if all(stable):
            all_stable += 1
            all_stable_different += said_different
    rate, ci = different / args.repeats, wilson(different, args.repeats)
    print(
        f"A/A, {args.repeats} repeats x 10 sessions x {args.ab_runs} runs: 'different' in "
        f"{different} ({100 * rate:.1f} %, 95 % CI {100 * ci.low:.1f}-{100 * ci.high:.1f} %)"
    )
    print(f"    sessions judged stable: {stable_sessions}/{sessions}")
    print(
        f"    repeats with every session stable: {all_stable}; 'different' among them: "
        f"{all_stable_different}"
    )
    return rate <= MAX_FALSE_POSITIVES


def meter_cost(model: Path, rounds: int = 6) -> None:
    """p50 with the energy meter (a sampling thread) over p50 without, alternating."""
    import statistics
    import tempfile

    from edgeship_runtime.sysfs import SYSFS_ROOT_ENV

    with tempfile.TemporaryDirectory() as root:
        hwmon, rapl = Path(root, "sys/class/hwmon/hwmon0"), Path(root, "sys/class/powercap")
        hwmon.mkdir(parents=True)
        (hwmon / "name").write_text("ina219\n")
        (hwmon / "power1_input").write_text("2500000\n")
        (rapl / "intel-rapl:0").mkdir(parents=True)
        (rapl / "intel-rapl:0" / "name").write_text("package-0\n")
        (rapl / "intel-rapl:0" / "energy_uj").write_text("1000\n")
        os.environ[SYSFS_ROOT_ENV] = root
        try:
            with LocalTarget() as target:
                ratios = []
                for _ in range(rounds):
                    p50 = {}
                    for energy in (True, False):
                        policy = MeasurePolicy(warmup=20, runs=2000, steady=False, energy=energy)
                        config = ProfileConfig(policy=policy, session=SessionOptions(threads=1))
                        report = target.profile(model, config)
                        p50[energy] = report.latency_ms.p50
                        if energy:
                            assert report.energy is not None and len(report.energy.sensors) == 2
                    ratios.append(p50[True] / p50[False])
        finally:
            del os.environ[SYSFS_ROOT_ENV]
    print(
        f"energy meter on/off, p50 ratio over {rounds} rounds of 2000 runs: median "
        f"{statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed window (s)")
    parser.add_argument("--repeats", type=int, default=100, help="A/A repeats (0: none)")
    parser.add_argument("--ab-runs", type=int, default=200, help="A/A timed runs per model")
    parser.add_argument("--no-cgroup", action="store_true", help="skip the quota run")
    args = parser.parse_args()
    model = build_zoo().root / "cnn.onnx"
    checks: dict[str, bool] = {}
    with LocalTarget() as target:
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        checks["quiet run stable"] = not show("quiet", profile(target, model, args.seconds, True))
        checks["CPU hog unstable"] = show("CPU hog", hogged(target, model, args.seconds))
        if not args.no_cgroup:
            cut = quota_cut(target, model, args.seconds)
            if isinstance(cut, str):
                print(f"CPU quota: skipped ({cut})")
            else:
                checks["CPU quota cut unstable"] = show("CPU quota cut", cut)
        if args.repeats:
            checks[f"A/A false positives <= {MAX_FALSE_POSITIVES:.0%}"] = aa(target, model, args)
    meter_cost(model)
    for name, ok in checks.items():
        print(f"{'pass' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
