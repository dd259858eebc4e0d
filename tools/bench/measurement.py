"""Measurement at the defaults: do verdicts mean something, and how fine does an A/B resolve?

On ``local`` (the runtime in a subprocess), for each zoo model (``--models``, default the
MLP and the CNN), at the defaults a user gets (``edgeship profile`` and ``edgeship ab``
with no measurement option), ``--repeats`` times each:

1. quiet: ``profile`` (1 s of timed runs) and an A/A ``ab`` (the model against itself:
   10 sessions of 0.5 s per model, memory runs included); how often each is judged
   stable, how often the A/A says "different" (its false-positive rate), the smallest
   change it could detect and its wall time; for ``profile``, the range of its p50s over
   the repeats (how far the headline figure moves from one run to the next) and, for the
   windows judged unstable, what was slow in them: the share of their values (the
   guard's medians of consecutive runs) 25 % or more over the window's lower quartile,
   how far over, and their p50s beside the stable windows'.
2. CPU hog: the same with one busy-looping process per CPU the runtime may use, each
   pinned to its CPU (``--cpus`` narrows both to those CPUs), started before the
   measurement and killed after it; how often the verdict flags it.

Rates come with their Wilson 95 % interval. Checks (exit 1 when one fails; they need a
quiet machine, so the load average is printed first): quiet runs stable in >= 95 %, hog
runs flagged in >= 95 %, A/A 'different' in <= 5 %, the A/A's detectable change <= 5 %
in its median repeat and its wall time under a minute.

    python tools/bench/measurement.py [--repeats 20] [--models mlp,cnn] [--cpus 0,1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.ab.result import NO_DIFFERENCE  # noqa: E402
from edgeship.ab.runner import ABConfig, run_ab  # noqa: E402
from edgeship.ab.schedule import Schedule  # noqa: E402
from edgeship.ab.stats import StatsPolicy  # noqa: E402
from edgeship.core.config import ProfileConfig  # noqa: E402
from edgeship.models.estimate import wilson  # noqa: E402
from edgeship.targets.local import LocalTarget  # noqa: E402
from edgeship_runtime.guards import window_values  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402

HOG = "while True: pass"
MIN_STABLE = 0.95
MIN_FLAGGED = 0.95
MAX_FALSE_POSITIVES = 0.05
MAX_DETECTABLE = 0.05
MAX_AB_SECONDS = 60.0
SLOW = 1.25
"""A value (a median of consecutive runs) this far over its window's lower quartile is
slow."""


@dataclass
class Tally:
    """How one case went over its repeats."""

    stable: int = 0
    runs: int = 0
    different: int = 0
    detectable: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    causes: dict[str, int] = field(default_factory=dict)
    p50_ms: list[float] = field(default_factory=list)
    stable_p50_ms: list[float] = field(default_factory=list)
    slow: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, stable: bool, wall_s: float, causes: Sequence[str] = ()) -> None:
        self.runs += 1
        self.stable += stable
        self.wall_s.append(wall_s)
        for cause in dict.fromkeys(causes):
            self.causes[cause] = self.causes.get(cause, 0) + 1


def rate(count: int, n: int) -> str:
    """``19/20 (95 %, 75-99 %)``: a count, its share and Wilson 95 % interval."""
    if n == 0:
        return "-"
    ci = wilson(count, n)
    return f"{count}/{n} ({100 * count / n:.0f} %, {100 * ci.low:.0f}-{100 * ci.high:.0f} %)"


@contextmanager
def hogs(cpus: Sequence[int]) -> Iterator[None]:
    """One busy loop per CPU in ``cpus``, each pinned to its CPU, for the block."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", HOG],
            preexec_fn=lambda cpu=cpu: os.sched_setaffinity(0, {cpu}),  # type: ignore[misc]
        )
        for cpu in cpus
    ]
    time.sleep(0.2)  # every hog running before the measurement starts
    try:
        yield
    finally:
        for hog in started:
            hog.kill()
            hog.wait()


def profile_case(
    target: LocalTarget, model: Path, cpus: tuple[int, ...], seed: int, tally: Tally
) -> None:
    """One ``profile`` at its defaults (pinned with ``--cpus`` when given; every repeat
    the same, ``seed`` aside)."""
    t0 = time.monotonic()
    report = target.profile(model, ProfileConfig(policy=MeasurePolicy(cpus=cpus), samples=True))
    v = report.validity
    assert v is not None and report.samples_ms is not None
    stable = v.verdict == "stable"
    tally.add(stable, time.monotonic() - t0, v.causes)
    tally.p50_ms.append(report.latency_ms.p50)
    if stable:
        tally.stable_p50_ms.append(report.latency_ms.p50)
    else:
        tally.slow.append((*slow_stretch(report.samples_ms), report.latency_ms.p50))


def slow_stretch(samples_ms: Sequence[float]) -> tuple[float, float]:
    """The share of a window's values (the guard's medians of consecutive runs) that are
    ``SLOW`` or more above the window's usual speed, and how far above it they are (their
    median). The usual speed is the lower quartile of the values: a window slow for more
    than half its length has a slow median."""
    values, _ = window_values(np.asarray(samples_ms, dtype=np.float64))
    usual = float(np.percentile(values, 25))
    slow = values[values >= SLOW * usual]
    return slow.size / values.size, float(np.median(slow)) / usual - 1 if slow.size else 0.0


def ab_case(
    target: LocalTarget, model: Path, cpus: tuple[int, ...], seed: int, tally: Tally
) -> None:
    """One A/A ``ab`` at its defaults (its own seed; pinned with ``--cpus`` when given)."""
    config = ABConfig(schedule=Schedule(seed=seed, cpus=cpus), stats=StatsPolicy(seed=seed))
    t0 = time.monotonic()
    report = run_ab(model, [model], target, config)
    wall = time.monotonic() - t0
    device = report.devices[0]
    (comparison,) = device.comparisons
    causes = [c for v in device.validity for cs in v.causes.values() for c in cs]
    tally.add(bool(device.stable), wall, causes)
    tally.different += comparison.verdict != NO_DIFFERENCE
    if comparison.min_detectable_change is not None:
        tally.detectable.append(comparison.min_detectable_change)


def repeat(
    label: str, repeats: int, one: Callable[[int, Tally], None], hog_cpus: Sequence[int] | None
) -> Tally:
    tally = Tally()
    for seed in range(repeats):
        if hog_cpus is None:
            one(seed, tally)
        else:
            with hogs(hog_cpus):
                one(seed, tally)
        print(f"  {label} #{seed}: {tally.stable}/{tally.runs} stable so far", flush=True)
    return tally


def summary(model: str, case: str, tally: Tally, hogged: bool) -> str:
    causes = ", ".join(f"{c} {n}" for c, n in sorted(tally.causes.items())) or "-"
    judged = (
        f"flagged {rate(tally.runs - tally.stable, tally.runs)}"
        if hogged
        else f"stable {rate(tally.stable, tally.runs)}"
    )
    line = f"{model:8} {case:16} {judged}; causes: {causes}"
    if case.startswith("ab"):
        line += f"; A/A 'different' {rate(tally.different, tally.runs)}"
        if tally.detectable:
            line += (
                f"; detectable ±{100 * statistics.median(tally.detectable):.2f} % median, "
                f"±{100 * max(tally.detectable):.2f} % worst"
            )
    if tally.p50_ms:  # how far the headline figure moves from one run to the next
        line += f"; p50 {min(tally.p50_ms):.4f}-{max(tally.p50_ms):.4f} ms over the runs"
    if tally.slow and not hogged:  # what the flags of quiet windows saw
        shares, excess, p50 = zip(*tally.slow, strict=True)
        line += (
            f"; the {len(shares)} flagged: {_span(shares, 100, '%')} of their values "
            f"{100 * (SLOW - 1):.0f} % or more over the window's lower quartile (at "
            f"+{_span(excess, 100, '%')}), p50 {_span(p50, 1, ' ms', 4)}"
        )
        if tally.stable_p50_ms:
            line += f" (the stable: {_span(tally.stable_p50_ms, 1, ' ms', 4)})"
    return line + f"; wall {statistics.median(tally.wall_s):.1f} s median"


def _span(values: Sequence[float], scale: float, unit: str, digits: int = 0) -> str:
    low, high = scale * min(values), scale * max(values)
    return f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="runs of each case (20)")
    parser.add_argument("--models", default="mlp,cnn", help="zoo models (mlp,cnn)")
    parser.add_argument(
        "--cpus", default="", help="pin the runtime and the hogs to these CPUs (default: all)"
    )
    parser.add_argument("--no-ab", action="store_true", help="profile only")
    args = parser.parse_args()
    cpus = tuple(int(c) for c in args.cpus.split(",") if c)
    hog_cpus = list(cpus or sorted(os.sched_getaffinity(0)))
    zoo = build_zoo().root
    assert zoo is not None
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; hogs on {hog_cpus}")
    checks: dict[str, bool] = {}
    lines = []
    with LocalTarget() as target:
        for name in args.models.split(","):
            model = zoo / f"{name}.onnx"
            cases = [("profile", partial(profile_case, target, model, cpus))]
            if not args.no_ab:
                cases.append(("ab A/A", partial(ab_case, target, model, cpus)))
            for case, one in cases:
                quiet = repeat(f"{name} {case} quiet", args.repeats, one, None)
                hogged = repeat(f"{name} {case} hog", args.repeats, one, hog_cpus)
                lines += [
                    summary(name, f"{case} quiet", quiet, hogged=False),
                    summary(name, f"{case} CPU hog", hogged, hogged=True),
                ]
                checks[f"{name} {case}: quiet stable >= {MIN_STABLE:.0%}"] = (
                    quiet.stable >= MIN_STABLE * quiet.runs
                )
                checks[f"{name} {case}: hog flagged >= {MIN_FLAGGED:.0%}"] = (
                    hogged.runs - hogged.stable >= MIN_FLAGGED * hogged.runs
                )
                if case.startswith("ab"):
                    checks[f"{name} A/A 'different' <= {MAX_FALSE_POSITIVES:.0%}"] = (
                        quiet.different <= MAX_FALSE_POSITIVES * quiet.runs
                    )
                    checks[f"{name} A/A detectable <= {MAX_DETECTABLE:.0%}"] = (
                        bool(quiet.detectable)
                        and statistics.median(quiet.detectable) <= MAX_DETECTABLE
                    )
                    checks[f"{name} A/A wall < {MAX_AB_SECONDS:.0f} s"] = (
                        statistics.median(quiet.wall_s) < MAX_AB_SECONDS
                    )
    print("\n".join(lines))
    for check, ok in checks.items():
        print(f"{'pass' if ok else 'FAIL'}: {check}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
