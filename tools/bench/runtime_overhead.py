"""Runtime overhead: edgeship's timed path against a bare loop of the backend's own call.

For the zoo's CNN at batch 1 on one thread, per backend, in one process and on the same
input array:

* runtime: ``edgeship_runtime.model.load_model`` + ``measure.time_runs`` — the code path a
  profile takes on a device, not a copy of it;
* bare: ONNX Runtime's ``session.run(None, feeds)``, or LiteRT's ``set_tensor`` /
  ``invoke`` / ``get_tensor``, timed per call with the same clock (``perf_counter_ns``)
  and, like the runtime, with the garbage collector paused.

The two alternate in ``--rounds`` rounds (the order flips every round) so that clock
boost, thermal state and cache drift hit both alike. Prints both medians over all samples
and their ratio; exits 1 when a ratio exceeds ``--max-ratio`` (default 1.05), 2 when the
models cannot be found or built.

Short rounds keep each pair of runtime/bare blocks close in time, which matters on a
shared machine: the per-round ratios show how noisy the run was.

Usage: ``python tools/bench/runtime_overhead.py [--zoo DIR] [--rounds 40] [--runs 100]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.inputs import generate_feeds
from edgeship_runtime.measure import MeasurePolicy, time_runs
from edgeship_runtime.model import LoadedModel, load_model

REPO_ROOT = Path(__file__).resolve().parents[2]
ZOO_BUILD = REPO_ROOT / "tools" / "zoo" / "build.py"
MODELS = {"onnxruntime": "cnn.onnx", "tflite": "cnn.tflite"}
THREADS = 1

Feeds = Mapping[str, np.ndarray]
BareCall = Callable[[Feeds], Any]


class BenchError(Exception):
    """The benchmark cannot run (models missing and not buildable)."""


# ------------------------------------------------------------------------------ models


def find_models(zoo: Path, build: bool) -> dict[str, Path]:
    """The zoo's CNN per backend; builds the zoo once (``tools/zoo/build.py``) if needed."""
    missing = [name for name in MODELS.values() if not (zoo / name).is_file()]
    if missing and build:
        print(f"{', '.join(missing)} not in {zoo}: building the zoo ...", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, str(ZOO_BUILD), "--out", str(zoo)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:]) or "(no output)"
            raise BenchError(f"building the zoo failed (exit {done.returncode}):\n{tail}")
        missing = [name for name in MODELS.values() if not (zoo / name).is_file()]
    if missing:
        raise BenchError(
            f"{', '.join(missing)} not found in {zoo}; build it with `python {ZOO_BUILD}`"
        )
    return {backend: zoo / name for backend, name in MODELS.items()}


# -------------------------------------------------------------------------- bare loops


def bare_onnxruntime(path: Path, names: list[str]) -> BareCall:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def bare_tflite(path: Path, names: list[str]) -> BareCall:
    """``names``: the runtime's input names, in the interpreter's input order (the runtime
    may call a tensor by its signature name, ``input``, rather than its tensor name)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=THREADS)
    it.allocate_tensors()
    details = it.get_input_details()
    if len(details) != len(names):
        raise BenchError(f"{path}: {len(details)} inputs, the runtime sees {len(names)}")
    inputs = [(d["index"], name) for d, name in zip(details, names, strict=True)]
    outputs = [d["index"] for d in it.get_output_details()]

    def call(feeds: Feeds) -> list[np.ndarray]:
        for index, name in inputs:
            it.set_tensor(index, feeds[name])
        it.invoke()
        return [it.get_tensor(index) for index in outputs]

    return call


BARE = {"onnxruntime": bare_onnxruntime, "tflite": bare_tflite}


def time_bare(call: BareCall, feeds: Feeds, warmup: int, runs: int) -> list[float]:
    """Per-call latencies in ms, measured exactly as ``time_runs`` measures its runs."""
    for _ in range(warmup):
        call(feeds)
    samples_ns: list[int] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            call(feeds)
            samples_ns.append(time.perf_counter_ns() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [ns / 1e6 for ns in samples_ns]


# ------------------------------------------------------------------------------- bench


@dataclass
class Result:
    backend: str
    runtime_ms: float
    bare_ms: float
    round_ratios: list[float]

    @property
    def ratio(self) -> float:
        return self.runtime_ms / self.bare_ms


def bench_backend(backend: str, path: Path, rounds: int, runs: int, warmup: int) -> Result:
    model: LoadedModel = load_model(str(path), backend, SessionOptions(threads=THREADS))
    bare = BARE[backend](path, [spec.name for spec in model.session.signature.inputs])
    feeds = generate_feeds(model.session.signature, seed=0)  # dynamic dims → batch 1
    np.testing.assert_allclose(  # both sides compute the same thing on the same input
        model.session.run(feeds)[0], bare(feeds)[0], rtol=1e-5, atol=1e-6
    )
    policy = MeasurePolicy(warmup=warmup, runs=runs)
    ours: list[float] = []
    theirs: list[float] = []
    ratios = []
    for r in range(rounds):
        sides = ["runtime", "bare"] if r % 2 == 0 else ["bare", "runtime"]
        got: dict[str, list[float]] = {}
        for side in sides:
            if side == "runtime":
                got[side] = time_runs(model, feeds, policy)[0]
            else:
                got[side] = time_bare(bare, feeds, warmup, runs)
        ours += got["runtime"]
        theirs += got["bare"]
        ratios.append(statistics.median(got["runtime"]) / statistics.median(got["bare"]))
    model.close()
    return Result(backend, statistics.median(ours), statistics.median(theirs), ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=REPO_ROOT / ".zoo", help="zoo directory")
    parser.add_argument("--no-build", action="store_true", help="never build a missing zoo")
    parser.add_argument("--backend", choices=sorted(MODELS), action="append", help="default: all")
    parser.add_argument("--rounds", type=int, default=40, help="alternating rounds (default 40)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per side per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per side per round")
    parser.add_argument("--max-ratio", type=float, default=1.05, help="fail above this ratio")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--rounds and --runs must be at least 1, --warmup 0 or more")
    try:
        paths = find_models(args.zoo, build=not args.no_build)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    backends = args.backend or sorted(MODELS)
    print(
        f"CNN, batch 1, {THREADS} thread; {args.rounds} alternating rounds of {args.runs} runs "
        f"(after {args.warmup} warm-up) per side"
    )
    print(
        f"{'backend':<12} {'runtime p50 ms':>15} {'bare p50 ms':>12} {'ratio':>7}"
        "  per-round ratios: min / median / max"
    )
    failed = []
    for backend in backends:
        result = bench_backend(backend, paths[backend], args.rounds, args.runs, args.warmup)
        ratios = result.round_ratios
        rounds = f"{min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f}"
        print(
            f"{backend:<12} {result.runtime_ms:>15.4f} {result.bare_ms:>12.4f} "
            f"{result.ratio:>7.3f}  {rounds}"
        )
        if result.ratio > args.max_ratio:
            failed.append(f"{backend} {result.ratio:.3f}")
    if failed:
        print(f"FAIL: ratio above {args.max_ratio}: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"ok: every ratio <= {args.max_ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
