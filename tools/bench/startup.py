"""Start-up: ``edgeship --help`` and ``--version`` against ``python -c pass``, and an unchanged
re-deploy from the CLI against ``ssh BOARD true``.

Prints, measured side by side in one run (the commands interleaved, round by round,
against drift), best and median of ``--repeats``:

1. ``edgeship --help``, ``edgeship --version`` and ``python -c pass`` (the floor: the
   interpreter's own start), each a fresh process, and the CLI's ratio to the floor
   (target: ``--help`` <= 0.15 s);
2. when an emulated arm64 board can be started (``tools/testbed``: root, iproute2,
   openssh-server, qemu-user and the board's cached root), ``edgeship deploy MODEL
   --target BOARD --name X`` a second time, nothing changed, against ``ssh BOARD true``
   with the same ssh config, and their ratio (target: <= 1.3x). The first deploy skips
   the health check, so the board needs no ``setup``; the timed ones are as a user runs
   them. ``--baseline TREE`` (a checkout of another commit) times its deploy beside.

The sources are compiled to bytecode first, as an installed edgeship is (pip compiles at
install): with ``PYTHONDONTWRITEBYTECODE`` set, each run would otherwise compile every
module it imports, and time that instead.

    python tools/bench/startup.py [--repeats 10] [--no-board] [--model .zoo/mlp.onnx]
                                  [--baseline TREE]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tools.testbed import Testbed, missing_requirements, rootfs  # noqa: E402

ARCH = "aarch64"
CLI = [sys.executable, "-m", "edgeship.cli.main"]

Command = tuple[Sequence[str], dict[str, str]]
"""argv, and the environment it runs in."""


def from_tree(tree: Path) -> dict[str, str]:
    """The environment that runs the edgeship of checkout ``tree``, compiled to bytecode."""
    for package in ("sdk", "runtime"):
        compileall.compile_dir(tree / package, quiet=1)
    paths = [str(tree / "sdk"), str(tree / "runtime"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def seconds(argv: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=600, env=env)
    return time.perf_counter() - started


def side_by_side(commands: dict[str, Command], repeats: int) -> dict[str, list[float]]:
    """Each command's times, one run of each per round."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, (argv, env) in commands.items():
            times[label].append(seconds(argv, env))
    return times


def show(times: dict[str, list[float]], floor: str) -> None:
    print(f"{'':<34} {'best s':>7} {'median s':>8} {'best / ' + floor:>16}")
    base = min(times[floor])
    for label, runs in times.items():
        best = min(runs)
        print(f"{label:<34} {best:>7.3f} {statistics.median(runs):>8.3f} {best / base:>15.2f}x")


def bench_start(repeats: int, env: dict[str, str]) -> None:
    show(
        side_by_side(
            {
                "edgeship --help": ([*CLI, "--help"], env),
                "edgeship --version": ([*CLI, "--version"], env),
                "python -c pass": ([sys.executable, "-c", "pass"], env),
            },
            repeats,
        ),
        "python -c pass",
    )


def bench_redeploy(
    bed: Testbed, model: Path, repeats: int, env: dict[str, str], baseline: Path | None
) -> None:
    board = bed.devices[0].name
    files = ["--ssh-config", str(bed.ssh_config), "--targets", str(bed.targets)]
    deploy = [*CLI, "deploy", str(model), "--target", board, "--name", "x", *files]
    seconds([*deploy, "--no-health-check"], env)  # the first: it uploads
    print(f"\nboard {board}: emulated {bed.arch} (qemu-user)")
    commands: dict[str, Command] = {
        f"ssh {board} true": (bed.ssh_argv(bed.devices[0], "true"), env),
        "edgeship deploy, unchanged": (deploy, env),
    }
    if baseline is not None:
        commands["  the same, baseline tree"] = (deploy, from_tree(baseline))
    show(side_by_side(commands, repeats), f"ssh {board} true")


def board_missing(model: Path) -> list[str]:
    missing = missing_requirements(need_python=False) + rootfs.missing_requirements(ARCH)
    if not rootfs.is_cached(ARCH):
        missing.append(f"no cached {ARCH} root (python -m tools.testbed rootfs {ARCH})")
    if not model.exists():
        missing.append(f"no {model} (the zoo: python -m tools.zoo)")
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-board", action="store_true", help="start-up figures only")
    parser.add_argument("--model", type=Path, default=REPO / ".zoo" / "mlp.onnx")
    parser.add_argument(
        "--baseline", type=Path, metavar="TREE", help="a checkout whose deploy is timed beside"
    )
    args = parser.parse_args(argv)
    env = from_tree(REPO)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {args.repeats} rounds\n")
    bench_start(args.repeats, env)
    if args.no_board:
        return 0
    missing = board_missing(args.model)
    if missing:
        print("\nno board: " + "; ".join(missing))
        return 0
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bed = stack.enter_context(Testbed(1, workdir, prefix="esstart", arch=ARCH))
        bench_redeploy(bed, args.model, args.repeats, env, args.baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
