"""compress's latency rounds sized by runs only against sized by time too, side by side.

On ``local`` (one thread), the zoo MLP against its FP16 copy (made here with ``compress``),
``--repeats`` times each way in turn: 12 interleaved rounds as compress's slowdown guard
takes them, each round timing every model for ``--runs`` runs (``--min-seconds 0``: the
old rounds) or for at least compress's default seconds too. Per way: the spread of the
rounds' log ratios (variant p50 over base p50; what the guard's detectable slowdown rests
on), its median and worst over the repeats, and the wall time. No check: it reports.

    python tools/bench/compress_rounds.py [--repeats 5] [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgeship.compress import QuantizeConfig, compress  # noqa: E402
from edgeship.compress import _evaluate as evaluate  # noqa: E402
from edgeship.compress.config import LATENCY_SECONDS  # noqa: E402
from edgeship.compress.guard import SLOWER_ROUNDS  # noqa: E402
from edgeship.targets.local import LocalTarget  # noqa: E402
from tools.zoo.build import build_zoo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each way (5)")
    parser.add_argument("--runs", type=int, default=200, help="runs per model and round (200)")
    args = parser.parse_args()
    base = build_zoo().path("mlp.onnx")
    fp16 = Path(tempfile.mkdtemp(prefix="edgeship-rounds-")) / "mlp-fp16.onnx"
    compress(base, QuantizeConfig("fp16"), None, fp16)
    ways = {"runs only": 0.0, f"at least {LATENCY_SECONDS:g} s": LATENCY_SECONDS}
    spreads: dict[str, list[float]] = {way: [] for way in ways}
    walls: dict[str, list[float]] = {way: [] for way in ways}
    with LocalTarget() as target:
        for repeat in range(args.repeats):
            for way, seconds in ways.items():
                t0 = time.monotonic()
                lat = evaluate.latency(
                    base, fp16, target, rounds=SLOWER_ROUNDS, runs=args.runs, min_seconds=seconds
                )
                walls[way].append(time.monotonic() - t0)
                ratios = np.log(np.asarray(lat.model_rounds_ms) / np.asarray(lat.base_rounds_ms))
                spreads[way].append(float(np.std(ratios, ddof=1)))
                print(f"  #{repeat} {way}: spread {100 * spreads[way][-1]:.2f} %", flush=True)
    print(f"zoo mlp against its fp16, {SLOWER_ROUNDS} rounds of {args.runs} runs, 1 thread:")
    for way in ways:
        s = spreads[way]
        print(
            f"{way:16} spread of the round ratios {100 * statistics.median(s):.2f} % median, "
            f"{100 * max(s):.2f} % worst ({', '.join(f'{100 * x:.2f}' for x in s)}); "
            f"wall {statistics.median(walls[way]):.1f} s median"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
