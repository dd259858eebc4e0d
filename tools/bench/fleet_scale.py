"""Fleet fan-out at scale: `profile` on 8, 32 and 64 testbed devices with `--forks 16`.

Each device is a real sshd in its own network namespace, held to a small CPU budget (a
cgroup quota, --device-cpu) so that 16 at once stay within this machine's cores, and
profiles the zoo's smallest model (mlp, 20 runs, 1 thread). The devices are started once
(the largest count), the runtime and the model are put on each beforehand (untimed),
then each fleet size is timed, smallest first.

Printed per fleet size: wall time, waves (ceil(devices / forks)), wall time per wave,
the host's CPU (resource.getrusage of this process plus its reaped children: the SDK's
threads, SSH, the statistics), per device, and when the first and last results arrived.
Targets: wall time O(devices / forks) (per-wave time within 1.5x of the smallest fleet's)
and host CPU per device roughly constant (within 1.5x of the smallest fleet's).
Exit status 1 when one is missed. Needs root, iproute2 and openssh-server.

    python tools/bench/fleet_scale.py [--devices 8,32,64] [--forks 16] [--device-cpu 0.05]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.core.config import ConnectOptions, ProfileConfig, Timeouts  # noqa: E402
from edgeship.targets.fleet import DeviceResult, FleetProgress, run_each  # noqa: E402
from edgeship.targets import Target, open_targets  # noqa: E402
from edgeship_runtime.backends.base import SessionOptions  # noqa: E402
from edgeship_runtime.measure import MeasurePolicy  # noqa: E402
from tools.testbed import Testbed  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402


def host_cpu_s() -> float:
    """CPU seconds (user + system) of this process and its reaped children so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class Run:
    devices: int
    waves: int
    wall_s: float
    cpu_s: float
    first_s: float
    last_s: float
    failed: int

    @property
    def per_wave_s(self) -> float:
        return self.wall_s / self.waves

    @property
    def cpu_per_device_ms(self) -> float:
        return 1000 * self.cpu_s / self.devices


def fan_out(targets: list[Target], model: Path, forks: int) -> Run:
    config = ProfileConfig(
        policy=MeasurePolicy(warmup=5, runs=20), session=SessionOptions(threads=1)
    )
    arrived: list[float] = []
    t0, c0 = time.perf_counter(), host_cpu_s()

    def on_result(result: DeviceResult[object], progress: FleetProgress) -> None:
        arrived.append(time.perf_counter() - t0)

    results = run_each(targets, lambda t: t.profile(model, config), forks, on_result=on_result)
    wall, cpu = time.perf_counter() - t0, host_cpu_s() - c0
    for r in results:
        if r.error is not None:
            print(f"  {r.target}: {type(r.error).__name__}: {r.error}")
    waves = math.ceil(len(targets) / forks)
    failed = sum(not r.ok for r in results)
    return Run(len(targets), waves, wall, cpu, min(arrived), max(arrived), failed)


def prepare(targets: list[Target], model: Path, forks: int) -> float:
    """Runtime and model on every device, untimed as far as the figures go."""
    t0 = time.perf_counter()
    config = ProfileConfig(policy=MeasurePolicy(warmup=1, runs=1))
    results = run_each(targets, lambda t: t.profile(model, config), forks)
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"preparing failed on {len(bad)} devices: {bad[0].error}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", default="8,32,64", help="fleet sizes (default 8,32,64)")
    parser.add_argument("--forks", type=int, default=16)
    parser.add_argument("--device-cpu", type=float, default=0.05, metavar="CORES")
    parser.add_argument("--rounds", type=int, default=1, help="timed runs per fleet size")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.devices.split(","))
    model = build_zoo().root / "mlp.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with Testbed(sizes[-1], Path(tmp) / "bed", prefix="esfs", cpu_cap=args.device_cpu) as bed:
            print(
                f"testbed: {sizes[-1]} devices (sshd + namespace + user each, capped at "
                f"{args.device_cpu:g} cores) up in {time.perf_counter() - t0:.1f} s"
            )
            options = ConnectOptions(
                ssh_config=bed.ssh_config,
                targets_file=bed.targets,
                timeouts=Timeouts(connect=30, auth=30, command=300),
            )
            names = [d.name for d in bed.devices]
            spent = prepare(open_targets(",".join(names), options), model, args.forks)
            print(f"runtime and model put on {len(names)} devices in {spent:.1f} s (untimed)")
            runs = []
            for n in sizes:
                for _ in range(args.rounds):
                    run = fan_out(open_targets(",".join(names[:n]), options), model, args.forks)
                    runs.append(run)
                    print(
                        f"{n:3d} devices, --forks {args.forks}: {run.wall_s:6.1f} s wall "
                        f"({run.waves} waves, {run.per_wave_s:5.1f} s each), host CPU "
                        f"{run.cpu_s:6.2f} s = {run.cpu_per_device_ms:4.0f} ms per device; "
                        f"first result at {run.first_s:.1f} s, last at {run.last_s:.1f} s"
                        + (f"; {run.failed} FAILED" if run.failed else "")
                    )
    return verdict(runs)


def verdict(runs: list[Run]) -> int:
    small = runs[0]
    wave_ratio = max(r.per_wave_s for r in runs) / small.per_wave_s
    cpu_ratio = max(r.cpu_per_device_ms for r in runs) / small.cpu_per_device_ms
    print(
        f"per-wave time, largest / smallest fleet: {wave_ratio:.2f} (target <= 1.50); "
        f"host CPU per device, largest / smallest: {cpu_ratio:.2f} (target <= 1.50)"
    )
    checks = (("wall", wave_ratio <= 1.5), ("cpu", cpu_ratio <= 1.5))
    missed = [name for name, ok in checks if not ok]
    if any(r.failed for r in runs):
        missed.append("failures")
    print("targets missed: " + (", ".join(missed) if missed else "none"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
