"""A local sweep's start-up: threads (today's default for a board or two) against a local
Ray (the default before, whenever Ray was installed; ``--ray local`` today).

Two figures, measured side by side in one run (the arms interleaved, round by round,
against drift), best and median of ``--repeats``, each in a fresh process:

1. the executor: ``open_executor`` as ``edgeship sweep --target local`` opens it, from
   the call until it can take work, and its close;
2. the command: ``edgeship sweep MODEL RECIPE --target local`` with one fp16 variant, from
   the process's start to its first board's work (the line saying the variant was made:
   its cell goes to the board at once) and to the end; and the warnings it printed.

    python tools/bench/sweep_startup.py [--repeats 3] [--model .zoo/mlp.onnx]

Needs Ray (``pip install 'edgeship[ray]'``) for the Ray arm; without it, threads only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "edgeship.cli.main"]
QUICK = ["--runs", "20", "--sessions", "6", "--block", "5", "--warmup", "2", "--no-memory"]

OPEN = """
import sys, time
from edgeship.core.config import ConnectOptions
from edgeship.sweep import open_executor
ray = None if sys.argv[1] == "default" else sys.argv[1]
started = time.perf_counter()
executor = open_executor(ray, ConnectOptions(), boards=1)
opened = time.perf_counter()
executor.close()
print(executor.name, opened - started, time.perf_counter() - opened)
"""


def executor_times(arm: str) -> tuple[str, float, float]:
    """(executor, seconds to open, seconds to close) in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", OPEN, arm], capture_output=True, text=True, timeout=600, check=True
    )
    name, opened, closed = done.stdout.split()[-3:]
    return name, float(opened), float(closed)


def sweep_times(arm: Sequence[str], model: Path, recipe: Path) -> tuple[float, float, int]:
    """(seconds to the first board's work, seconds to the end, warning lines) of one
    ``edgeship sweep`` into a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="edgeship-sweep-bench-") as out:
        argv = [*CLI, "sweep", str(model), str(recipe), "--target", "local", "--out", out]
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*argv, *QUICK, *arm], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = None
        for line in proc.stdout:
            if first is None and line.startswith("variant "):
                first = time.perf_counter() - started
        err = proc.stderr.read()
        if proc.wait(timeout=600) != 0 or first is None:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{err[-2000:]}")
        total = time.perf_counter() - started
    warnings = sum("warning" in line.lower() for line in err.splitlines())
    return first, total, warnings


def show(title: str, columns: Sequence[str], rows: dict[str, list[tuple[float, ...]]]) -> None:
    print(f"\n{title}")
    print(f"{'':<28}" + "".join(f"{c:>22}" for c in columns))
    for label, runs in rows.items():
        cells = []
        for i in range(len(columns)):
            values = [r[i] for r in runs]
            cells.append(f"{min(values):>10.3f} / {statistics.median(values):<9.3f}")
        print(f"{label:<28}" + "".join(f"{c:>22}" for c in cells))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=REPO / ".zoo" / "mlp.onnx")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"no {args.model} (the zoo: python -m tools.zoo)")
        return 1
    has_ray = importlib.util.find_spec("ray") is not None
    arms = {"threads (default)": "default", **({"local Ray (before)": "local"} if has_ray else {})}
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {args.repeats} rounds")
    if not has_ray:
        print("Ray is not installed: threads only")
    opened: dict[str, list[tuple[float, ...]]] = {label: [] for label in arms}
    swept: dict[str, list[tuple[float, ...]]] = {label: [] for label in arms}
    warned: dict[str, int] = dict.fromkeys(arms, 0)
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "recipe.toml"
        recipe.write_text('[variants.half]\nmethod = "fp16"\n')
        for _ in range(args.repeats):
            for label, arm in arms.items():
                _, start, stop = executor_times(arm)
                opened[label].append((start, stop))
                flags = [] if arm == "default" else ["--ray", arm]
                first, total, warnings = sweep_times(flags, args.model, recipe)
                swept[label].append((first, total))
                warned[label] += warnings
    show("executor, s (best / median)", ["open", "close"], opened)
    show("edgeship sweep, s (best / median)", ["to first board", "whole sweep"], swept)
    print()
    for label, count in warned.items():
        print(f"{label}: {count} warning lines in {args.repeats} sweeps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
