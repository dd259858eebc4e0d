"""The README's zoo build, timed from nothing, and its longest silence, against a baseline.

Each build runs ``python tools/zoo/build.py --out <fresh dir>`` under a pseudo-terminal,
as a user at a terminal sees it, and records when each piece of its output arrived: the
total time and the longest stretch without a byte (the first hour's "a progress line at
least every 10 s"). ``--baseline REV`` builds the zoo also with ``tools/zoo`` as it was at
git revision REV (extracted with ``git archive``; the rest of the tree is this one's), the
two one after the other in the same run, ``--rounds`` times, so a busy machine weighs on
both alike.

    python tools/bench/zoo_build.py [--baseline REV] [--rounds N] [--timeout S]
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Build:
    """One build: its exit status, seconds, and the longest silence and when it began."""

    label: str
    status: int
    seconds: float
    silence_s: float
    silence_at_s: float
    last_line: str


def timed_build(label: str, tree: Path, out: Path, timeout_s: float) -> Build:
    """Run the zoo build of ``tree`` into ``out`` on a pseudo-terminal, watching its output."""
    paths = [tree, REPO / "sdk", REPO / "runtime", REPO]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    argv = [sys.executable, str(tree / "tools" / "zoo" / "build.py"), "--out", str(out)]
    t0 = last = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the build, its stdout and stderr the terminal
        os.execve(argv[0], argv, env)
    silence, silence_at, tail, killed = 0.0, 0.0, b"", False
    while True:
        if time.monotonic() - t0 > timeout_s and not killed:
            os.kill(pid, 9)
            killed = True
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal: it has ended
            break
        if not data:
            break
        now = time.monotonic()
        if now - last > silence:
            silence, silence_at = now - last, last - t0
        last, tail = now, (tail + data)[-400:]
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - t0
    lines = [ln for ln in tail.decode(errors="replace").splitlines() if ln.strip()]
    code = -9 if killed else os.waitstatus_to_exitcode(status)
    return Build(label, code, seconds, silence, silence_at, lines[-1] if lines else "")


def baseline_tree(rev: str, root: Path) -> Path:
    """``tools/zoo`` of ``rev`` under ``root`` (with ``tools/__init__.py``)."""
    archive = root / "baseline.tar"
    with archive.open("wb") as f:
        subprocess.run(
            ["git", "archive", rev, "tools/__init__.py", "tools/zoo"],
            cwd=REPO,
            stdout=f,
            check=True,
            timeout=60,
        )
    tree = root / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="also build with tools/zoo at REV")
    parser.add_argument("--rounds", type=int, default=1, help="builds of each (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per build")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgeship-zoo-build-") as tmp:
        root = Path(tmp)
        trees = [("this tree", REPO)]
        if args.baseline:
            trees.append((f"tools/zoo at {args.baseline}", baseline_tree(args.baseline, root)))
        builds = []
        for i in range(args.rounds):
            for label, tree in trees:
                print(f"zoo_build: round {i + 1}, {label}...", file=sys.stderr, flush=True)
                out = root / f"zoo-{len(builds)}"
                builds.append(timed_build(label, tree, out, args.timeout))
                b = builds[-1]
                print(
                    f"{b.label}: exit {b.status}, {b.seconds:.1f} s, longest silence "
                    f"{b.silence_s:.1f} s (from {b.silence_at_s:.1f} s); {b.last_line}",
                    flush=True,
                )
    return 0 if all(b.status == 0 for b in builds) else 1


if __name__ == "__main__":
    sys.exit(main())
