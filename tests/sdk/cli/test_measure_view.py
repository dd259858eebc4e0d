"""The one validity line per model that profile prints."""

from __future__ import annotations

from edgeship.cli.measure_view import validity_line
from edgeship_runtime.report import LatencyStats, Validity

LATENCY = LatencyStats(n=3110, mean=0.322, std=0.07, min=0.2, p50=0.31, p90=0.39, p95=0.4,
                       p99=0.59, max=1.2)  # fmt: skip
SPREAD = "the std of 20 medians of 155 consecutive runs is 0.0534 ms, 17 % of their mean"


def test_an_unstable_window_with_one_reason_says_the_reason() -> None:
    one = Validity(verdict="unstable", reasons=[SPREAD], causes=["noise"], warmup_runs=18)
    assert validity_line("cnn.onnx", one, LATENCY) == (
        "warning: cnn.onnx: unstable: the runs' times spread or moved → close other work, or "
        "time longer with --min-seconds (1.00 s of timed runs: 3110 runs after 18 warm-up "
        f"runs; the reason: {SPREAD})"
    )


def test_an_unstable_window_with_several_reasons_counts_them() -> None:
    waited = "the runtime's threads waited 0.30 s for a CPU in the 1.0 s window"
    two = Validity(verdict="unstable", reasons=[waited, SPREAD], causes=["contention", "noise"])
    line = validity_line("cnn.onnx", two, LATENCY)
    assert line is not None and line.endswith(f"; 2 reasons, the first: {waited})")
    assert line.startswith("warning: cnn.onnx: unstable: other processes took the runtime's CPUs")


def test_a_stable_window_names_what_it_could_not_check() -> None:
    stable = Validity(verdict="stable", unchecked=["temperature (no thermal zone)"],
                      warmup_runs=10, warmup_settled=True)  # fmt: skip
    assert validity_line("mlp.onnx", stable, LATENCY) == (
        "mlp.onnx: stable (1.00 s of timed runs: 3110 runs after 10 warm-up runs, settled; "
        "unchecked: temperature (no thermal zone))"
    )
