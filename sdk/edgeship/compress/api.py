"""The one entry point, :func:`compress`, running any registered method, and its helpers.

Every method writes its model to ``out``; then, shared here: the model is loaded and run
once on the target (never a silently broken model), its size/parameters/sparsity are
measured, and with data its accuracy and fidelity against the base. A torch model is
exported to ONNX beside ``out`` (``<out stem>.base.onnx``) to serve as the base.

One target serves the whole call: every verification and latency round (and, through
:func:`~edgeship.compress.run_recipe`, every variant) runs in the one runtime session it
opens, instead of a fresh runtime per check.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship_runtime.formats import detect_format

from ..config import ConnectOptions
from ..errors import UsageError
from ..targets import Target
from . import evaluate, onnx_graph
from .config import AnyConfig, config_to_dict, data_needs, steps_of
from .data import DataLike, Dataset, check_dataset, load_dataset, require
from .errors import CompressionError
from .methods import Job, MethodConfig, Outcome, method_for
from .report import CompressionReport, CompressionResult
from .source import ModelLike, base_model

if TYPE_CHECKING:
    from .torch_model import TorchModel


@dataclass(frozen=True)
class CompressOptions:
    """Where produced models are run, and whether batch-1 latency is measured.

    ``target``: an open :class:`~edgeship.targets.Target` (used as is and left open for its
    owner to close) or a target spec (``local``, a device, an ssh alias), opened once for
    the call with ``connect`` and closed at its end. Latency is always measured for channel
    pruning, which must be faster: ``threads`` runtime threads, ``latency_rounds``
    interleaved rounds of ``latency_runs`` timed runs.
    """

    target: str | Target = "local"
    connect: ConnectOptions | None = None
    latency: bool = False
    threads: int = 1
    latency_rounds: int = 3
    latency_runs: int = 200

    def __post_init__(self) -> None:
        if self.threads < 0 or self.latency_rounds < 1 or self.latency_runs < 1:
            raise UsageError("threads must be >= 0, latency rounds and runs >= 1")


def compress(
    model: ModelLike | TorchModel,
    config: AnyConfig,
    data: DataLike | None = None,
    out: str | Path = "compressed.onnx",
    options: CompressOptions | None = None,
) -> CompressionResult:
    """Compress ``model`` as ``config`` says; write ``out``; return it with its report."""
    options = options or CompressOptions()
    out = Path(out)
    t0 = time.perf_counter()
    dataset = load_dataset(data)
    steps = steps_of(config)
    for step in steps:
        method_for(step)  # an unknown method or a config of the wrong type: at once
    for why in data_needs(config):
        require(dataset, why)
    base, source = base_model(model, dataset, out)
    if dataset is not None:
        check_dataset(evaluate.signature(base), dataset)
    with evaluate.opened(options.target, options.connect) as target:
        step_reports, outcome = _run_steps(base, source, steps, dataset, out, target)
        report = finish(base, out, config, dataset, outcome, options, target)
    report.steps = step_reports
    if source is not None:
        report.notes.insert(0, f"torch model {source.factory} exported to {base} as the base")
    report.seconds = round(time.perf_counter() - t0, 3)
    return CompressionResult(out, report)


def run_method(
    base: Path,
    source: TorchModel | None,
    config: MethodConfig,
    data: Dataset | None,
    out: Path,
) -> Outcome:
    """Run one method, writing ``out``; its outcome (details and notes)."""
    method = method_for(config)
    suffix = method.suffix(method.input_format(base, source))
    if out.suffix != suffix:
        raise UsageError(f"--out {out}: this method writes a {suffix} file")
    out.parent.mkdir(parents=True, exist_ok=True)
    return method.run(Job(base, config, data, out, source))


def finish(
    base: Path,
    out: Path,
    config: AnyConfig,
    data: Dataset | None,
    outcome: Outcome,
    options: CompressOptions,
    target: Target,
) -> CompressionReport:
    """Verify on ``target``, measure, compare: the report of one produced model."""
    report = verified_report(base, out, config, data, outcome, target)
    if data is not None:
        report.fidelity = evaluate.fidelity(
            evaluate.predict(base, data), evaluate.predict(out, data), data.labels
        )
    structured = any(method_for(s).structured for s in steps_of(config))
    if structured and report.model.parameters >= report.base.parameters:
        raise CompressionError(
            f"channel pruning removed nothing ({report.model.parameters} parameters)"
        )
    if options.latency or structured:
        report.latency = evaluate.latency(
            base, out, target, options.threads, options.latency_rounds, options.latency_runs
        )
        if structured and report.latency.speedup <= 1.0:
            report.notes.append(
                f"warning: not faster on {target.name} "
                f"({report.latency.model_p50_ms:.4f} vs {report.latency.base_p50_ms:.4f} ms)"
            )
    return report


def verified_report(
    base: Path,
    out: Path,
    config: AnyConfig,
    data: Dataset | None,
    outcome: Outcome,
    target: Target,
) -> CompressionReport:
    """``out`` run once on ``target`` (or :class:`VerificationError`), and its sizes."""
    verified = evaluate.verify(out, evaluate.first_sample(data), target)
    return CompressionReport(
        method=config.method,
        parameters=config_to_dict(config),
        base=onnx_graph.model_stats(base),
        model=onnx_graph.model_stats(out),
        verified_on=verified,
        details=outcome.details,
        notes=list(outcome.notes),
    )


def _run_steps(
    base: Path,
    source: TorchModel | None,
    steps: tuple[MethodConfig, ...],
    data: Dataset | None,
    out: Path,
    target: Target,
) -> tuple[list[CompressionReport], Outcome]:
    """One method: its outcome. Several (a chain): each applied to the previous one's
    output and verified, with a report per step; the notes of all."""
    if len(steps) == 1:
        return [], run_method(base, source, steps[0], data, out)
    reports: list[CompressionReport] = []
    current = base
    with tempfile.TemporaryDirectory(prefix="edgeship-chain-") as tmp:
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            method = method_for(step)
            suffix = method.suffix(detect_format(str(current)))
            path = out if last else Path(tmp) / f"step{i}{suffix}"
            outcome = run_method(current, source if i == 0 else None, step, data, path)
            report = verified_report(current, path, step, data, outcome, target)
            report.model.path = str(path) if last else f"(step {i + 1})"
            reports.append(report)
            current = path
    return reports, Outcome(notes=[n for r in reports for n in r.notes])
