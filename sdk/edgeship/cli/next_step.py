"""The one ``next:`` line that ends ``profile``, ``compress`` and ``ab``: what to run next,
as a command to copy.

Printed on stderr, with the command's other footer lines (``report: ...``), never with
``--json``: stdout holds the command's view or its one JSON document.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Collection, Sequence
from pathlib import Path

from edgeship.ab.result import FASTER, SLOWER, ABReport
from edgeship.ab.table import device_name
from edgeship.cli.output import print_stderr

__all__ = ["after_ab", "after_compress", "after_profile", "command", "print_next"]

_MEASURED = (".onnx", ".tflite")
"""What ``ab`` and ``profile`` take: a compression from a torch state dict has no base."""


def command(*words: object, target: str | None = None) -> str:
    """``edgeship WORDS...`` quoted for a shell, ``--target T`` added unless local."""
    parts = ["edgeship", *(str(w) for w in words)]
    if target and target != "local":
        parts += ["--target", target]
    return shlex.join(parts)


def print_next(ns: argparse.Namespace, text: str) -> None:
    """``next: TEXT`` on stderr, unless ``--json``."""
    if not ns.json:
        print_stderr(f"next: {text}")


def after_profile(models: Sequence[Path], target: str | None) -> str:
    """Several models: compare them in an A/B; one: compress it, then compare."""
    if len(models) > 1:
        return f"{command('ab', *models, target=target)} (is the difference real?)"
    model = models[0]
    out = model.with_name(f"{model.stem}-int8{model.suffix}")
    compress = command("compress", model, "--method", "int8-dynamic", "--out", out, target=target)
    return f"{compress}, then {command('ab', model, out, target=target)}"


def after_compress(base: Path, made: Sequence[Path], target: str | None) -> str:
    """An A/B of what was made against its base (a profile when the base is no model
    file the runtime loads)."""
    if not made:
        return "nothing was made: see the errors above"
    if base.suffix not in _MEASURED:
        return command("profile", *made, target=target)
    return command("ab", base, *made, target=target)


def _outputs_compared(report: ABReport, variant: str) -> bool:
    """Whether ``variant``'s outputs were judged against the base's on some device."""
    return any(
        c.agreement is not None or c.accuracy_drop_pp is not None
        for d in report.devices
        for c in d.comparisons
        if c.variant == variant
    )


def after_ab(
    report: ABReport,
    base: Path,
    variants: Sequence[Path],
    target: str | None,
    sessions: int,
    same: Collection[Path] = (),
) -> str:
    """Deploy the fastest variant that is faster on every device and failed no gate; run
    more sessions while a comparison is undecided; else keep the base. A measurement judged
    unstable decides nothing: measure again. ``variants``: the paths in the report's
    order; ``same``: those that are ``base`` itself (A/A)."""
    if report.failures:
        return "fix the failed devices (errors above), then run the same command again"
    paths = dict(zip(report.variants, variants, strict=True))
    verdicts: dict[str, list[str]] = {v: [] for v in report.variants}
    speedups: dict[str, list[float]] = {v: [] for v in report.variants}
    for device in report.devices:
        for c in device.comparisons:
            verdicts[c.variant].append(c.verdict)
            speedups[c.variant].append(c.speedup)
    gated = {g.variant for g in report.failed_gates()}
    real = [v for v in report.variants if paths[v] not in same and verdicts[v]]
    if not real:
        return f"an A/A run measures the noise; compare a variant: {command('ab', base, 'VARIANT')}"
    unstable = [device_name(d) for d in report.devices if d.stable is False]
    if unstable:
        again = command("ab", base, *variants, target=target)
        return (
            f"the measurement was unstable on {', '.join(unstable)}: remove its cause (the "
            f"validity lines above), then run it again before deciding: {again}"
        )
    winners = [v for v in real if v not in gated and all(x == FASTER for x in verdicts[v])]
    if winners:
        best = max(winners, key=lambda v: min(speedups[v]))
        deploy = f"deploy {best}: {command('deploy', paths[best], target=target)}"
        if not _outputs_compared(report, best):
            deploy += (
                f" (its outputs were not compared with {base.name}'s: run the A/B with "
                "--data FILE.npz first)"
            )
        return deploy
    undecided = [v for v in real if any(x not in (FASTER, SLOWER) for x in verdicts[v])]
    if undecided:
        more = command("ab", base, *variants, "--sessions", 2 * sessions, target=target)
        return f"undecided for {', '.join(undecided)}: run more sessions: {more}"
    return (
        f"keep {base.name}: no variant is faster on every device within its gates (other methods: "
        f"{command('compress', '--help')})"
    )
