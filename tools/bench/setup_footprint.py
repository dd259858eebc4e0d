"""Setup footprint: what the README's first command costs with one extra against another.

For each extra (default: ``dev``, what the first command installed before, and ``zoo``,
what it installs now) a fresh venv is made in a temporary directory and timed through
the README's install step, ``pip install 'torch==2.13.0' -e '<repo>[EXTRA]'``; then its
size on disk (``du``) and its number of packages are read. ``--main-job`` also times the
rest of the first command once, in the venv of the last extra: the zoo build (into a
fresh directory, so it really trains) and ``edgeship profile`` of the four models.

Downloads are not measured: first every extra's wheels are fetched once (``pip
download``, which fills pip's cache; torch comes from a local file here), so each timed
install reads its wheels from the cache and the times are install times. A download on a
new machine adds its own time, in proportion to the sizes shown.

    python tools/bench/setup_footprint.py [--extras dev,zoo] [--main-job] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"
ZOO_MODELS = ("mlp.onnx", "cnn.onnx", "mlp.tflite", "cnn.tflite")
TIMEOUT_S = 1800


@dataclass(frozen=True)
class Footprint:
    """One extra's install: seconds (venv creation, pip install), bytes on disk, packages."""

    extra: str
    venv_s: float
    install_s: float
    size_bytes: int
    packages: int


def _timed(command: list[str], quiet: bool = False) -> float:
    t0 = time.perf_counter()
    out = subprocess.DEVNULL if quiet else None
    subprocess.run(command, check=True, timeout=TIMEOUT_S, cwd=REPO, stdout=out)
    return time.perf_counter() - t0


def warm_cache(extras: list[str], root: Path) -> None:
    """Fetch every extra's wheels once, so that no timed install downloads."""
    print("setup: filling pip's cache...", file=sys.stderr, flush=True)
    specs = [f"{REPO}[{extra}]" for extra in extras]
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(root / "wheels")]
    subprocess.run([*pip, TORCH, *specs], check=True, timeout=TIMEOUT_S)


def install(extra: str, root: Path) -> Footprint:
    """A fresh venv under ``root`` with edgeship's ``extra``, as the README installs it."""
    env_dir = root / f"venv-{extra}"
    t0 = time.perf_counter()
    venv.create(env_dir, with_pip=True)
    venv_s = time.perf_counter() - t0
    pip = [str(env_dir / "bin" / "pip")]
    print(f"setup: installing [{extra}] into {env_dir}...", file=sys.stderr, flush=True)
    install_s = _timed([*pip, "install", "-q", TORCH, "-e", f"{REPO}[{extra}]"])
    listed = subprocess.run(
        [*pip, "list", "--format=json"], check=True, capture_output=True, text=True, timeout=120
    )
    return Footprint(
        extra=extra,
        venv_s=venv_s,
        install_s=install_s,
        size_bytes=du_bytes(env_dir),
        packages=len(json.loads(listed.stdout)),
    )


def du_bytes(path: Path) -> int:
    """Disk usage of ``path`` in bytes, as ``du`` counts it (allocated blocks)."""
    done = subprocess.run(
        ["du", "-s", "--block-size=1", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return int(done.stdout.split()[0])


def main_job(env_dir: Path, root: Path) -> tuple[float, float]:
    """Seconds of the first command's zoo build (from nothing) and of its profile."""
    zoo = root / "zoo"
    python = str(env_dir / "bin" / "python")
    print(f"setup: building the zoo with {python}...", file=sys.stderr, flush=True)
    build_s = _timed([python, str(REPO / "tools/zoo/build.py"), "--out", str(zoo)])
    models = [str(zoo / name) for name in ZOO_MODELS]
    profile = [str(env_dir / "bin" / "edgeship"), "profile", *models, "--threads", "1"]
    profile_s = _timed(profile, quiet=True)
    return build_s, profile_s


def table(rows: list[Footprint]) -> str:
    """Side by side, with the last extra's ratio to the first."""
    first, last = rows[0], rows[-1]
    head = ["", *(f"[{r.extra}]" for r in rows), f"[{last.extra}]/[{first.extra}]"]
    lines = [
        ("venv creation, s", [f"{r.venv_s:.1f}" for r in rows], last.venv_s / first.venv_s),
        ("pip install, s", [f"{r.install_s:.1f}" for r in rows], last.install_s / first.install_s),
        (
            "venv size, MB",
            [f"{r.size_bytes / 1e6:.0f}" for r in rows],
            last.size_bytes / first.size_bytes,
        ),
        ("packages", [str(r.packages) for r in rows], last.packages / first.packages),
    ]
    out = [" | ".join(head)]
    out += [" | ".join([name, *cells, f"{ratio:.2f}"]) for name, cells, ratio in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="dev,zoo", help="comma-separated (default dev,zoo)")
    parser.add_argument("--main-job", action="store_true", help="also time zoo build + profile")
    parser.add_argument("--keep", type=Path, help="make the venvs here and keep them")
    args = parser.parse_args(argv)
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    with tempfile.TemporaryDirectory(prefix="edgeship-setup-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        warm_cache(extras, root)
        rows = [install(extra, root) for extra in extras]
        print("wheels from pip's cache (downloads not timed): the times are install times")
        print(table(rows))
        if args.main_job:
            build_s, profile_s = main_job(root / f"venv-{extras[-1]}", root)
            last = extras[-1]
            print(f"[{last}] zoo build {build_s:.1f} s, profile of 4 models {profile_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
