"""SSH deploy and fleet benchmarks on the real testbed (issue: deploy and profile over SSH).

Prints, measured side by side in one run (rounds interleaved against drift):
  1. first deploy of a 100 MB file vs `scp` of the same bytes to the same device
     (target: deploy throughput >= 0.9x scp's);
  2. re-deploy of an unchanged model, fresh connection included (target: <= 0.3 s);
  3. `profile` on 8 devices at once vs on one device (target: <= 1.5x the time), with each
     device held to its own CPU budget (a cgroup quota, --device-cpu) as real boards have
     their own CPUs; then, for comparison, with all 8 sharing this machine's cores;
  4. resume: the device's sessions killed (testbed kill_sessions) once the host has sent
     90 % of the file, then a retry (target: the retry sends what had not reached the
     device's disk plus at most one chunk; the host's count at the cut is printed beside:
     what the device still held in buffers when it was killed is lost too);
  5. the cost of the health check: a first deploy of a real model with and without it.
Deploys in 1 and 2 run without the health check (their payload is no model). Exit status
1 when a target is missed. Needs root, iproute2 and openssh-server.

    python tools/bench/deploy_ssh.py [--rounds 3] [--megabytes 100] [--device-cpu 0.2]
        [--only upload,redeploy,fleet,resume,health]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402

from edgeship.core.config import DEFAULT_HEALTH, ConnectOptions, ProfileConfig, Timeouts  # noqa: E402
from edgeship.deploy.upload import CHUNK, TAIL  # noqa: E402
from edgeship.core.errors import TargetError  # noqa: E402
from edgeship.targets.fleet import run_each  # noqa: E402
from edgeship.targets import SSHTarget, open_target, open_targets  # noqa: E402
from edgeship_runtime.backends.base import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from tools.testbed import DEVICE_PYTHON, Testbed  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402


def _ssh_target(bed: Testbed, options: ConnectOptions, index: int = 0) -> SSHTarget:
    target = open_target(bed.devices[index].name, options)
    assert isinstance(target, SSHTarget)
    return target


def bench_upload(bed: Testbed, options: ConnectOptions, work: Path, rounds: int, mb: int) -> float:
    base = work / "payload.bin"
    base.write_bytes(b"ONNX" + bytes(range(256)) * (mb * 4096))
    size = base.stat().st_size
    dev = bed.devices[0]
    deploy_s, scp_s = [], []
    for r in range(rounds):
        variant = work / f"model{r}.onnx"  # a new blob each round: a true first deploy
        variant.write_bytes(base.read_bytes() + bytes([r]))
        t0 = time.perf_counter()
        subprocess.run(
            ["scp", "-q", "-F", str(bed.ssh_config), str(variant), f"{dev.name}:scp-copy.bin"],
            check=True,
            timeout=300,
        )
        scp_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with _ssh_target(bed, options) as target:
            done = target.deploy(variant, "bench", health=None)
        deploy_s.append(time.perf_counter() - t0)
        assert done.uploaded and done.activated
    scp_mbs = size / 2**20 / statistics.median(scp_s)
    deploy_mbs = size / 2**20 / statistics.median(deploy_s)
    ratio = deploy_mbs / scp_mbs
    print(
        f"upload {size / 2**20:.0f} MiB, median of {rounds}: scp {statistics.median(scp_s):.2f} s "
        f"({scp_mbs:.0f} MiB/s), edgeship deploy {statistics.median(deploy_s):.2f} s "
        f"({deploy_mbs:.0f} MiB/s, incl. connect, hash check on the device, activation)"
    )
    print(f"  deploy/scp throughput ratio: {ratio:.2f} (target >= 0.90)")
    return ratio


def bench_redeploy(bed: Testbed, options: ConnectOptions, model: Path, rounds: int) -> float:
    with _ssh_target(bed, options) as target:
        target.deploy(model, "unchanged", health=None)
    times = []
    for _ in range(max(rounds, 5)):
        t0 = time.perf_counter()
        with _ssh_target(bed, options) as target:
            done = target.deploy(model, "unchanged", health=None)
        times.append(time.perf_counter() - t0)
        assert not done.uploaded and not done.activated
    median = statistics.median(times)
    print(
        f"re-deploy of unchanged {model.name}, fresh connection each: median {median:.3f} s "
        f"(min {min(times):.3f}) (target <= 0.300 s)"
    )
    return median


def bench_fleet(bed: Testbed, options: ConnectOptions, model: Path, rounds: int) -> float:
    """Median wall time of `profile` on every device at once over one device; prints both."""
    config = ProfileConfig(
        policy=MeasurePolicy(warmup=10, runs=100), session=SessionOptions(threads=1)
    )
    names = [d.name for d in bed.devices]
    one_s, all_s, host_cpu = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        [single] = run_each(open_targets(names[0], options), lambda t: t.profile(model, config))
        one_s.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        results = run_each(
            open_targets(",".join(names), options),
            lambda t: t.profile(model, config),
            forks=len(names),
        )
        all_s.append(time.perf_counter() - t0)
        host_cpu.append(time.process_time() - c0)
        assert single.ok and all(r.ok for r in results), [r.error for r in results]
    ratio = statistics.median(all_s) / statistics.median(one_s)
    print(
        f"  profile {model.name} (100 runs, 1 thread): 1 device {statistics.median(one_s):.2f} s, "
        f"{len(names)} devices at once {statistics.median(all_s):.2f} s (median of {rounds}); "
        f"host CPU for the {len(names)}: {statistics.median(host_cpu):.2f} s"
    )
    print(f"  {len(names)}-device/1-device time ratio: {ratio:.2f}")
    return ratio


def bench_resume(bed: Testbed, options: ConnectOptions, work: Path, rounds: int, mb: int) -> bool:
    """Cut each upload once the host has sent 90 % of it, retry, count what the retry sent."""
    dev = bed.devices[1]
    size = mb << 20
    base = os.urandom(size)
    ok, lines = True, []
    for r in range(rounds):
        variant = work / f"resume{r}.onnx"
        variant.write_bytes(base[:-1] + bytes([r]))
        cut: list[int] = []

        def cut_at_90(done: int, total: int, cut: list[int] = cut) -> None:
            if done >= 0.9 * total and not cut:
                cut.append(done)
                bed.kill_sessions(dev)

        with _ssh_target(bed, options, 1) as target:
            target.store().progress = cut_at_90
            with contextlib.suppress(TargetError):
                target.deploy(variant, "resume", health=None)
        t0 = time.perf_counter()
        with _ssh_target(bed, options, 1) as target:
            done = target.deploy(variant, "resume", health=None)
            store = target.store()
            sent, kept = store.bytes_sent, store.bytes_resumed
        took = time.perf_counter() - t0
        assert done.activated and cut
        unsent = size - cut[0]
        # what never reached the device's disk must be sent again, and at most one chunk
        # more (the tail it does not trust); the host's count at the cut is shown beside
        ok = ok and sent <= size - (kept + TAIL) + CHUNK
        lines.append(
            f"  round {r + 1}: cut after the host sent {cut[0] / 2**20:.2f} MiB; the device "
            f"had kept {(kept + TAIL) / 2**20:.2f}; the retry sent {sent / 2**20:.2f} MiB "
            f"({sent / size:.1%} of the file; {(sent - unsent) / 2**20:.2f} MiB more than the "
            f"host had left to send) in {took:.2f} s"
        )
    print(f"resume after a cut at 90 % of {mb} MiB, {rounds} rounds:")
    print("\n".join(lines))
    print(
        "  retry sends what was not on the device's disk + <= one chunk "
        f"({CHUNK >> 20} MiB): {'yes' if ok else 'NO'}"
    )
    return ok


def bench_health(bed: Testbed, options: ConnectOptions, zoo: Path, rounds: int) -> None:
    """A first deploy of the zoo CNN (fresh bytes each time), with and without the check."""
    with_s, without_s, check_s = [], [], []
    for r in range(max(rounds, 3)):
        for health in (DEFAULT_HEALTH, None):
            proto = onnx.load(str(zoo / "cnn.onnx"))
            proto.doc_string = f"health bench {r} {health is None}"
            variant = bed.workdir / f"health{r}{health is None}.onnx"
            onnx.save(proto, str(variant))
            t0 = time.perf_counter()
            with _ssh_target(bed, options, 2) as target:
                done = target.deploy(variant, "health", health=health)
                (without_s if health is None else with_s).append(time.perf_counter() - t0)
                meta = target.store().describe("health").versions[-1]
            if health is not None:
                check_s.append(meta["health"]["checked_s"])
            assert done.activated
    w, wo = statistics.median(with_s), statistics.median(without_s)
    mib = (zoo / "cnn.onnx").stat().st_size / 2**20
    print(
        f"health check cost, first deploy of cnn.onnx ({mib:.1f} MiB), fresh connection, "
        f"median of {len(with_s)}: {w:.2f} s with, {wo:.2f} s without "
        f"(+{w - wo:.2f} s; the check itself: runtime start, load, one run: "
        f"{statistics.median(check_s):.2f} s)"
    )


def startup_cpu(bed: Testbed) -> float:
    """CPU seconds one runtime start-up spends importing numpy and onnxruntime."""
    out = bed.run_as(
        bed.devices[0],
        [
            str(DEVICE_PYTHON),
            "-c",
            "import time; t = time.process_time(); import numpy, onnxruntime; "
            "print(time.process_time() - t)",
        ],
        check=True,
    )
    return float(out.stdout)


def bench_fleets(
    work: Path, shared: Testbed, options: ConnectOptions, model: Path, rounds: int, cap: float
) -> float:
    """The fleet ratio on devices with a CPU budget of their own (the target), and, for
    comparison, on the shared testbed whose devices all compete for this machine's cores."""
    n = len(shared.devices)
    print(
        f"profile on {n} devices at once vs one device; devices capped at {cap:g} cores each "
        f"(cgroup CPU quota: a budget of their own, as separate boards have; {n} x {cap:g} = "
        f"{n * cap:g} of this machine's {os.cpu_count()} cores):"
    )
    with Testbed(n, work / "capped", prefix="esbc", cpu_cap=cap) as capped:
        capped_options = replace(options, ssh_config=capped.ssh_config, targets_file=capped.targets)
        with _ssh_target(capped, capped_options) as target:
            target.install_runtime()
        ratio = bench_fleet(capped, capped_options, model, rounds)
    print(f"  => {ratio:.2f} (target <= 1.50)")
    cpu = startup_cpu(shared)
    print(
        f"for comparison, uncapped devices sharing {os.cpu_count()} cores (one runtime start-up "
        f"alone costs {cpu:.2f} CPU-s to import numpy and onnxruntime; {n} of them need "
        f">= {n * cpu / (os.cpu_count() or 1):.2f} s of wall time here):"
    )
    bench_fleet(shared, options, model, rounds)
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument(
        "--device-cpu",
        type=float,
        default=0.2,
        metavar="CORES",
        help="CPU cap of each device in the fleet benchmark (default 0.2)",
    )
    parser.add_argument(
        "--only",
        default="upload,redeploy,fleet,resume,health",
        help="comma-separated parts to run (default: all)",
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    zoo = build_zoo().root
    with tempfile.TemporaryDirectory() as tmp, Testbed(8, Path(tmp) / "bed", prefix="esbn") as bed:
        options = ConnectOptions(
            ssh_config=bed.ssh_config, targets_file=bed.targets, timeouts=Timeouts(command=300)
        )
        with _ssh_target(bed, options) as target:  # the runtime is uploaded once, not timed
            target.install_runtime()
        results: dict[str, bool] = {}
        if "upload" in parts:
            ratio = bench_upload(bed, options, Path(tmp), args.rounds, args.megabytes)
            results["upload"] = ratio >= 0.9
        if "redeploy" in parts:
            results["redeploy"] = bench_redeploy(bed, options, zoo / "cnn.onnx", args.rounds) <= 0.3
        if "resume" in parts:
            results["resume"] = bench_resume(bed, options, Path(tmp), args.rounds, args.megabytes)
        if "health" in parts:
            bench_health(bed, options, zoo, args.rounds)
        if "fleet" in parts:
            fleet = bench_fleets(
                Path(tmp), bed, options, zoo / "mlp.onnx", args.rounds, args.device_cpu
            )
            results["fleet"] = fleet <= 1.5
    missed = [name for name, ok in results.items() if not ok]
    print("targets missed: " + (", ".join(missed) if missed else "none"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
