"""Sharded inference throughput: shards, a pipeline, and two devices against their baselines.

The zoo CNN as a batch-1 request stream (every request one digit image; ``--requests``
requests per measurement, fed continuously), through the runtime's own parallel code
(:mod:`edgeship_runtime.parallel`, the path ``edgeship profile --shards/--pipeline``
takes on a device, minus the stdio protocol):

======================  ==============================================================
``1 shard``             a pool of one worker process, one intra-op thread
``2 shards``            a pool of two worker processes on two cores, one thread each
``2 threads``           one ONNX Runtime session in this process, 2 intra-op threads
``unsplit, 1 core``     one session in this process, 1 thread, the process pinned to one core
``pipeline``            the 2 stages of ``edgeship partition`` (stage files written here),
                        one worker process per stage, each on its own core
======================  ==============================================================

Configurations alternate in ``--rounds`` rounds, in a fresh random order each round, so
that drift and other load on a shared machine fall on all of them; every ratio is taken
within a round, and the median over rounds is printed with the spread.

Across devices (needs root, iproute2 and openssh-server; skipped otherwise): a testbed of
two SSH devices pinned to cores 0 and 1, and ``edgeship run --shard``'s code
(:func:`edgeship.targets.shard.run_sharded`) running ``--device-samples`` samples as batch-1
requests on one device against both; timed from the first chunk sent to the last back,
with the devices connected and the model loaded.

Targets (the issue's): 2 shards ≥ 1.8x 1 shard and ≥ 1.0x 2 threads; pipeline ≥ 1.5x
unsplit on one core; two devices ≥ 1.7x one. Exits 1 when a median misses its target
(``--no-check`` to only report), 2 when the zoo cannot be found or built.

Usage: ``python tools/bench/parallel_throughput.py [--requests 2000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # tools.testbed, when run as a script

from edgeship_runtime.backends import SessionOptions  # noqa: E402
from edgeship_runtime.model import load_model  # noqa: E402
from edgeship_runtime.parallel import Pipeline, ShardPool, read_manifest  # noqa: E402

ZOO_BUILD = REPO_ROOT / "tools" / "zoo" / "build.py"
CUT = "/5/Relu_output_0"  # fallback cut when edgeship.partition is not available
TARGETS = {
    "2 shards / 1 shard": 1.8,
    "2 shards / 2 threads": 1.0,
    "pipeline / unsplit, 1 core": 1.5,
    "2 devices / 1 device": 1.7,
}

Feeds = dict[str, np.ndarray]
Measure = Callable[[], float]
CPU: dict[str, list[float]] = {}
"""Per configuration and round: CPU µs per request, summed over this process and workers."""


def find_zoo(zoo: Path) -> Path:
    if not (zoo / "cnn.onnx").is_file() or not (zoo / "digits_test.npz").is_file():
        print(f"building the zoo in {zoo} ...", file=sys.stderr)
        done = subprocess.run([sys.executable, str(ZOO_BUILD), "--out", str(zoo)], cwd=REPO_ROOT)
        if done.returncode != 0:
            raise SystemExit(2)
    return zoo


def partition_stages(model: Path, out: Path) -> tuple[Path, str]:
    """``edgeship partition MODEL --stages 2``; a fixed cut if that module is missing."""
    try:
        from edgeship.partition import PartitionConfig, partition
        from edgeship.targets.local import LocalTarget

        with LocalTarget() as target:
            partition(model, out, target, PartitionConfig(stages=2))
        return out, "edgeship partition --stages 2 (flops)"
    except ImportError:
        import onnx.utils

        out.mkdir(parents=True, exist_ok=True)
        onnx.utils.extract_model(str(model), str(out / "s0.onnx"), ["input"], [CUT])
        onnx.utils.extract_model(str(model), str(out / "s1.onnx"), [CUT], ["logits"])
        (out / "manifest.json").write_text(
            '{"schema": "edgeship.partition/1", "outputs": ["logits"], "stages": '
            '[{"index": 0, "file": "s0.onnx"}, {"index": 1, "file": "s1.onnx"}]}'
        )
        return out, f"onnx.utils.extract_model at {CUT}"


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def in_process(model: Path, requests: Sequence[Feeds], count: int, threads: int) -> Measure:
    session = load_model(str(model), options=SessionOptions(threads=threads)).session
    for feeds in requests:
        session.run(feeds)

    def measure() -> float:
        gc.disable()
        try:
            t0 = time.perf_counter()
            for i in range(count):
                session.run(requests[i % len(requests)])
            return count / (time.perf_counter() - t0)
        finally:
            gc.enable()

    return measure


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of ``pids`` so far (every thread), from /proc."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def with_cpu(name: str, measure: Measure, pids: Sequence[int], count: int) -> Measure:
    """``measure``, also recording the CPU it cost per request in :data:`CPU`."""

    def run() -> float:
        before = cpu_seconds(pids)
        rate = measure()
        CPU.setdefault(name, []).append((cpu_seconds(pids) - before) / count * 1e6)
        return rate

    return run


def local_configs(
    model: Path, stages: Path, requests: Sequence[Feeds], count: int, stack: contextlib.ExitStack
) -> dict[str, Measure]:
    one = SessionOptions(threads=1)
    cpus = sorted(os.sched_getaffinity(0))
    pool1 = stack.enter_context(ShardPool(str(model), requests[0], 1, options=one, cpus=cpus[:1]))
    pool2 = stack.enter_context(ShardPool(str(model), requests[0], 2, options=one, cpus=cpus[:2]))
    plan = read_manifest(str(stages))
    pipe = stack.enter_context(
        Pipeline(plan.stages, requests[0], outputs=plan.outputs, options=one, cpus=cpus[:2])
    )
    two_threads = in_process(model, requests, count, threads=2)
    unsplit = in_process(model, requests, count, threads=1)

    def stream(runner: ShardPool | Pipeline) -> Measure:
        def measure() -> float:
            result = runner.stream(requests, count)
            return result.requests / result.wall_s

        return measure

    def unsplit_one_core() -> float:
        with pinned(cpus[:1]):
            return unsplit()

    me = [os.getpid()]
    configs = {
        "1 shard": (stream(pool1), me + workers(pool1)),
        "2 shards": (stream(pool2), me + workers(pool2)),
        "2 threads": (two_threads, me),
        "unsplit, 1 core": (unsplit_one_core, me),
        "pipeline": (stream(pipe), me + workers(pipe)),
    }
    return {name: with_cpu(name, m, pids, count) for name, (m, pids) in configs.items()}


def workers(runner: ShardPool | Pipeline) -> list[int]:
    return [int(w["pid"]) for w in runner.worker_info()]


def rounds(configs: dict[str, Measure], n: int, seed: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    results: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(n):
        order = list(configs)
        rng.shuffle(order)
        for name in order:
            results[name].append(configs[name]())
    return results


def device_configs(model: Path, data: Feeds, stack: contextlib.ExitStack) -> dict[str, Measure]:
    """One and two testbed devices on cores 0 and 1; {} (with a note) when unavailable."""
    from edgeship.core.config import ConnectOptions, ProfileConfig, Timeouts
    from edgeship.targets.shard import run_sharded
    from edgeship.targets import open_targets
    from tools.testbed import Testbed, missing_requirements

    missing = missing_requirements()
    if missing or len(os.sched_getaffinity(0)) < 2:
        print(f"devices: skipped ({'; '.join(missing) or 'fewer than 2 cores'})")
        return {}
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
    bed = stack.enter_context(Testbed(2, workdir, "pb" + secrets.token_hex(2), cpus=[[0], [1]]))
    options = ConnectOptions(
        ssh_config=bed.ssh_config, targets_file=bed.targets, timeouts=Timeouts(command=300)
    )
    config = ProfileConfig(session=SessionOptions(threads=1))

    def measure(devices: int) -> Measure:
        def run() -> float:
            targets = open_targets(",".join(d.name for d in bed.devices[:devices]), options)
            done = run_sharded(model, targets, data, config, request_batch=1)
            return done.throughput_ips

        return run

    measure(2)()  # upload the runtime and the model once
    return {"1 device": measure(1), "2 devices": measure(2)}


def ratios(
    results: dict[str, list[float]], pairs: Sequence[tuple[str, str]]
) -> dict[str, list[float]]:
    return {
        f"{a} / {b}": [x / y for x, y in zip(results[a], results[b], strict=True)]
        for a, b in pairs
        if a in results and b in results
    }


def report(results: dict[str, list[float]], unit: str) -> None:
    for name, values in results.items():
        cpu = f"  CPU {statistics.median(CPU[name]):6.1f} us/request" if name in CPU else ""
        print(
            f"  {name:<16} median {statistics.median(values):>7,.0f} {unit}{cpu}   "
            f"(rounds: {', '.join(f'{v:,.0f}' for v in values)})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, default=REPO_ROOT / ".zoo")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device-rounds", type=int, default=3)
    parser.add_argument("--device-samples", type=int, default=20000)
    parser.add_argument("--no-devices", action="store_true")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(argv)
    zoo = find_zoo(ns.zoo)
    model = zoo / "cnn.onnx"
    with np.load(zoo / "digits_test.npz") as data:
        images = data["input"]
    requests = [{"input": images[i : i + 1]} for i in range(64)]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stages-")))
        stages, how = partition_stages(model, tmp / "stages")
        print(f"zoo CNN, batch-1 requests, {ns.requests} per measurement, {ns.rounds} rounds")
        print(f"pipeline stages: {how}")
        local = rounds(
            local_configs(model, stages, requests, ns.requests, stack), ns.rounds, ns.seed
        )
        report(local, "requests/s")
        results = ratios(
            local,
            [("2 shards", "1 shard"), ("2 shards", "2 threads"), ("pipeline", "unsplit, 1 core")],
        )
        if not ns.no_devices:
            tiled = np.resize(images, (ns.device_samples, *images.shape[1:]))
            devices = rounds(
                device_configs(model, {"input": tiled}, stack), ns.device_rounds, ns.seed
            )
            if devices.get("1 device"):
                report(devices, "samples/s")
                results.update(ratios(devices, [("2 devices", "1 device")]))
    missed = []
    for name, values in results.items():
        median, target = statistics.median(values), TARGETS[name]
        verdict = "ok" if median >= target else "BELOW TARGET"
        if median < target:
            missed.append(name)
        spread = f"{min(values):.2f}..{max(values):.2f}"
        print(f"{name:<28} {median:5.2f}x  (rounds {spread}; target >= {target}x) {verdict}")
    print(f"took {time.monotonic() - started:.0f} s")
    return 1 if missed and not ns.no_check else 0


if __name__ == "__main__":
    sys.exit(main())
