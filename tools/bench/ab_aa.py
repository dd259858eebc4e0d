"""A/A benchmark: the same model as base and variant, repeated; how often is it "different"?

The zoo CNN (FP32) is A/B-tested against itself ``--repeats`` times (each with its own
seed, so its own load orders, round orders and bootstrap) on ``local`` and on one device
of a fresh SSH testbed (``--no-testbed`` skips it). Every repeat is a full ``edgeship ab``
run: 10 sessions of at least 0.5 s per model (the default) and at least 300 timed runs per
model, one thread, no memory runs (not the question).

Check (exit 1 when it fails): on each target at least 95 % of the repeats say "no
significant difference". Prints every repeat's ratio, interval and p-value, the share of
intervals that contain 1, and the false-positive rate with its Wilson interval.

For comparison it also prints, on the very same samples, how often a Mann-Whitney test
would have said "different" at 0.05 had it taken every run, or every block's median, as
the unit; and with ``--single-load`` how often block medians say so when each model is
loaded once for the whole run (the design edgeship does not use, and why).

Note on reading it: even a test whose false-positive rate is exactly alpha = 0.05 says
"different" in 2 or more of 20 repeats with probability 0.26, so 20 repeats can only show
gross miscalibration; ``--repeats 100`` measures the rate far better.

    python tools/bench/ab_aa.py [--repeats 20] [--runs 300] [--sessions 10] [--single-load]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.ab.result import NO_DIFFERENCE, ABReport  # noqa: E402
from edgeship.ab.runner import ABConfig, run_ab  # noqa: E402
from edgeship.ab.schedule import Schedule  # noqa: E402
from edgeship.ab.stats import StatsPolicy  # noqa: E402
from edgeship.core.config import ConnectOptions, ProfileConfig, Timeouts  # noqa: E402
from edgeship.models.estimate import wilson  # noqa: E402
from edgeship.targets import Target, open_target  # noqa: E402
from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.measure import InterleavePolicy  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402

MIN_SHARE = 0.95


def repeats(target: Target, model: Path, args: argparse.Namespace) -> float:
    """Run the A/A ``args.repeats`` times on ``target``; the share of "no difference"."""
    same = covered = by_run = by_block = 0
    for seed in range(args.repeats):
        config = ABConfig(
            schedule=Schedule(runs=args.runs, sessions=args.sessions, seed=seed),
            stats=StatsPolicy(seed=seed),
            session=SessionOptions(threads=args.threads),
            memory=False,
        )
        report = run_ab(model, [model], target, config)
        [c] = report.devices[0].comparisons
        same += c.verdict == NO_DIFFERENCE
        covered += c.latency_ratio_ci.contains(1.0)
        p_run, p_block = other_units(report)
        by_run += p_run < 0.05
        by_block += p_block < 0.05
        ci = c.latency_ratio_ci
        print(
            f"  {target.name} #{seed:3d}: ratio {c.latency_ratio:.4f} [{ci.low:.4f}, "
            f"{ci.high:.4f}] p = {c.p_value:.3f} {c.verdict} (per run p = {p_run:.3g}, "
            f"per block p = {p_block:.3g})",
            flush=True,
        )
    n = args.repeats
    fp = wilson(n - same, n)
    print(
        f"{target.name}: 'no significant difference' in {same}/{n} ({same / n:.0%}); "
        f"interval contains 1 in {covered}/{n}; false-positive rate {(n - same) / n:.3f} "
        f"[{fp.low:.3f}, {fp.high:.3f}] (95 % Wilson)\n"
        f"{target.name}: on the same samples a test per run would say 'different' in "
        f"{by_run}/{n}, a test per block median in {by_block}/{n}"
    )
    return same / n


def other_units(report: ABReport) -> tuple[float, float]:
    """p-values of Mann-Whitney with every run, and every block's median, as the unit."""
    base, variant = (np.asarray(m.samples_ms) for m in report.devices[0].models)
    block = report.design.block
    p_run = stats.mannwhitneyu(variant, base).pvalue
    blocks = [np.median(a.reshape(-1, block), axis=1) for a in (base, variant)]
    p_block = stats.mannwhitneyu(blocks[1], blocks[0]).pvalue
    return float(p_run), float(p_block)


def single_load(target: Target, model: Path, args: argparse.Namespace) -> None:
    """Each model loaded once, all rounds in one ``interleave``: block medians' test."""
    schedule = Schedule(runs=args.runs, sessions=args.sessions)
    rounds = schedule.sessions * schedule.rounds
    rejections = 0
    config = ProfileConfig(session=SessionOptions(threads=args.threads))
    for seed in range(args.repeats):
        with target.load(model, config) as a, target.load(model, config) as b:
            policy = InterleavePolicy(warmup=10, block=schedule.block, blocks=rounds, seed=seed)
            result = target.interleave([a, b], policy)
        base, variant = (np.asarray(s).reshape(rounds, -1) for s in result.samples_ms)
        p = stats.mannwhitneyu(np.median(variant, axis=1), np.median(base, axis=1)).pvalue
        rejections += p < 0.05
    print(
        f"{target.name}, each model loaded once, {rounds} rounds: a test per block median "
        f"says 'different' in {rejections}/{args.repeats}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-testbed", action="store_true", help="local only")
    parser.add_argument(
        "--single-load", action="store_true", help="also the single-load design, on local"
    )
    args = parser.parse_args()
    zoo = build_zoo().root
    assert zoo is not None  # a built zoo always knows its directory
    model = zoo / "cnn.onnx"
    shares = {}
    with open_target("local") as local:
        shares["local"] = repeats(local, model, args)
        if args.single_load:
            single_load(local, model, args)
    if not args.no_testbed:
        from tools.testbed import Testbed

        with (
            tempfile.TemporaryDirectory() as tmp,
            Testbed(1, Path(tmp) / "bed", prefix="esaa") as bed,
        ):
            connect = ConnectOptions(
                ssh_config=bed.ssh_config,
                targets_file=bed.targets,
                timeouts=Timeouts(command=300),
            )
            with open_target(bed.devices[0].name, connect) as device:
                shares["ssh"] = repeats(device, model, args)
    failed = [name for name, share in shares.items() if share < MIN_SHARE]
    print(
        "checks: " + (f"below {MIN_SHARE:.0%} on {', '.join(failed)}" if failed else "all passed")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
