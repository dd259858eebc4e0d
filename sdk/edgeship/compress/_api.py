"""The one entry point, :func:`compress`, running any registered method, and its helpers.

An ONNX base is first made ready for the methods (:mod:`.prepare`: ``Constant`` weights
folded, simplified). Every method writes its model under a temporary name beside ``out``
(:func:`edgeship.models.output.staged`), moved to ``out`` only once accepted, so a failed
run leaves nothing there; then, shared here: the model is loaded and run once on the
target (never a silently broken model), its size/parameters/sparsity are measured, and
its fidelity against the base on held-out data (:func:`~.data.eval_split`) or on inputs
generated at the model's real shape: every output judged for what it is
(:func:`edgeship.models.kinds.judge_outputs`), and every change of the interface listed.
The guards (:mod:`.guard`) then refuse a no-op, a collapse of any output, a result
larger than its base and one slower on the target where its latency was measured (the
last three unless ``allow_degraded``). A torch model is exported to ONNX beside ``out``
(``<out stem>.base.onnx``) to serve as the base.

One target serves the whole call: every verification and latency round (and, through
:func:`~edgeship.compress.run_recipe`, every variant) runs in the one runtime session it
opens, instead of a fresh runtime per check.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeship.compress import _evaluate as evaluate
from edgeship.compress import guard
from edgeship.compress._data import (
    DataLike,
    Dataset,
    EvalSplit,
    check_dataset,
    eval_split,
    load_dataset,
    require,
)
from edgeship.compress._search import Search
from edgeship.compress._source import ModelLike, base_model
from edgeship.compress.config import (
    LATENCY_SECONDS,
    AnyConfig,
    QuantizeConfig,
    config_to_dict,
    data_needs,
    data_used,
    steps_of,
)
from edgeship.compress.guard import FidelityCollapse, GuardPolicy, Larger, NoChange, Slower
from edgeship.compress.methods import Job, MethodConfig, Outcome, method_for
from edgeship.compress.pruning.sparsity_search import SparsitySearch
from edgeship.compress.quantization.fallback import Fallback
from edgeship.compress.report import CompressionReport, CompressionResult, Latency
from edgeship.core.config import ConnectOptions
from edgeship.core.errors import (
    Cause,
    CompressionError,
    EdgeshipError,
    InputError,
    UsageError,
    cause_of,
)
from edgeship.core.extras import missing_extras
from edgeship.models import onnx_graph, stats
from edgeship.models.kinds import judge_outputs
from edgeship.models.model_file import ModelFile
from edgeship.models.output import staged
from edgeship.targets import Target

if TYPE_CHECKING:
    from edgeship.compress.training.loop import EpochProgress
    from edgeship.compress.training.torch_model import TorchModel

__all__ = [
    "SEARCH_CALLS",
    "SEARCH_SEED",
    "CompressOptions",
    "compress",
    "finish",
    "run_method",
    "verified_report",
]


@dataclass(frozen=True)
class CompressOptions:
    """Where produced models are run, and whether batch-1 latency is measured.

    ``target``: an open :class:`~edgeship.targets.Target` (used as is and left open for its
    owner to close) or a target spec (``local``, a device, an ssh alias), opened once for
    the call with ``connect`` and closed at its end. Latency is always measured for channel
    pruning, which must be faster: ``threads`` runtime threads, ``latency_rounds``
    interleaved rounds, each timing every model for at least ``latency_seconds`` and
    ``latency_runs`` runs. ``shapes`` (by input name) fill
    dynamic non-batch dims where no data gives them (generated inputs, latency); ``guard``
    says when a result counts as collapsed and whether to keep it anyway. ``on_epoch``
    hears of each finished epoch of a method that trains (distillation); ``on_step`` of
    each step as it starts (``verifying on local``, ``timing batch-1 latency ...``), so
    that a caller can show what a minute without epochs is spent on.
    """

    target: str | Target = "local"
    connect: ConnectOptions | None = None
    latency: bool = False
    threads: int = 1
    latency_rounds: int = 3
    latency_runs: int = 200
    latency_seconds: float = LATENCY_SECONDS
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    on_epoch: EpochProgress | None = None
    on_step: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.threads < 0 or self.latency_rounds < 1 or self.latency_runs < 1:
            raise UsageError("threads must be >= 0, latency rounds and runs >= 1")
        if self.latency_seconds < 0:
            raise UsageError(f"latency seconds must be >= 0, got {self.latency_seconds}")


@missing_extras()
def compress(
    model: ModelLike | TorchModel,
    config: AnyConfig,
    data: DataLike | None = None,
    out: str | Path = "compressed.onnx",
    options: CompressOptions | None = None,
    *,
    eval_data: DataLike | None = None,
) -> CompressionResult:
    """Compress ``model`` as ``config`` says; write ``out``; return it with its report.

    Fidelity is measured on ``eval_data``, else on a held-out part of ``data`` that the
    method never sees (all of it when the method uses none), else on generated inputs.
    """
    options = options or CompressOptions()
    out = Path(out)
    t0 = time.perf_counter()
    dataset, evalset = load_dataset(data, model), load_dataset(eval_data, model)
    steps = steps_of(config)
    for step in steps:
        method_for(step)  # an unknown method or a config of the wrong type: at once
    for why in data_needs(config):
        require(dataset, why)
    base, source = base_model(model, dataset, out)
    sig = evaluate.signature(base)
    if dataset is not None:
        check_dataset(sig, dataset)
    if evalset is not None:
        check_dataset(sig, evalset, "--eval-data")
    uses = data_used(config)
    split = eval_split(dataset, evalset, uses, reads=_rows_read(config))
    feeds = None if split.held is not None else _generated(base, options.shapes)
    some = split.train if split.train is not None else split.held
    sample = evaluate.first_sample(some) if feeds is None else feeds[0]
    search = _search(base, split, options) if uses and len(steps) == 1 else None
    _step(options, f"running {config.method}")
    with staged(out) as tmp, evaluate.opened(options.target, options.connect) as target:
        step_reports, outcome = _run_steps(
            base, source, steps, split.train, tmp, target, sample, options.on_epoch, search
        )
        report = finish(base, tmp, config, split, outcome, options, target, feeds, sample)
        for done in (report, *step_reports[-1:]):
            done.model.path = str(out)
        os.replace(tmp, out)  # accepted: only now is there a file at ``out``
    report.steps = step_reports
    if source is not None:
        report.notes.insert(0, f"torch model {source.factory} exported to {base} as the base")
    report.seconds = round(time.perf_counter() - t0, 3)
    return CompressionResult(out, report)


def _generated(base: Path, shapes: Mapping[str, tuple[int, ...]]) -> list[dict[str, np.ndarray]]:
    """Inputs generated at ``base``'s shape, checked to run on the base itself (a model
    whose inputs need real values, e.g. a sample rate, cannot be judged on them)."""
    feeds = evaluate.generated_feeds(base, shapes)
    try:
        evaluate.predict_feeds(base, feeds[:1])
    except EdgeshipError as exc:
        raise InputError(
            f"{base}: the model does not run on inputs generated at its shape ({exc}); "
            "its inputs need real values: give them with --data"
        ) from exc
    return feeds


SEARCH_CALLS = 16
"""Calls the INT8 fallback judges each try on (one sample each, as a device runs them)."""


def _rows_read(config: AnyConfig) -> int | None:
    """The most rows of ``--data`` a one-step quantization reads (its calibration's and
    the fallback search's); None for a method that reads all it gets (training, scoring)."""
    steps = steps_of(config)
    if len(steps) != 1 or not isinstance(steps[0], QuantizeConfig):
        return None
    calibration = steps[0].calibration_samples if steps[0].needs_data() else 0
    return max(calibration, SEARCH_CALLS)


SEARCH_SEED = 1000
"""The first seed of generated search inputs (the judgement's start at 0)."""


def _search(base: Path, split: EvalSplit, options: CompressOptions) -> Search:
    """What a method that searches judges on: rows the final judgement never sees (the
    split's method part; never the held-out rows), else inputs generated with other seeds
    than the judgement's."""
    if split.train is not None:
        calls = list(split.train.take(SEARCH_CALLS).batches(1))
        return Search(calls, options.guard, f"{len(calls)} samples of --data the method gets")
    calls = evaluate.generated_feeds(base, _shapes(base, split, options), first_seed=SEARCH_SEED)
    return Search(calls, options.guard, f"{len(calls)} generated inputs (seeds {SEARCH_SEED}+)")


def _shapes(base: Path, split: EvalSplit, options: CompressOptions) -> dict[str, tuple[int, ...]]:
    """The batch-1 shapes of ``base``'s inputs with dynamic dims: as the data given (the
    method's, else ``--eval-data``) has them, ``--shape`` over those."""
    some = split.train if split.train is not None else split.held
    return {**evaluate.latency_shapes(base, some), **options.shapes}


def run_method(
    base: Path,
    source: TorchModel | None,
    config: MethodConfig,
    data: Dataset | None,
    out: Path,
    on_epoch: EpochProgress | None = None,
    search: Search | None = None,
) -> Outcome:
    """Run one method, writing ``out``; its outcome (details and notes). An ONNX base is
    prepared first (:mod:`.prepare`). Here compression meets the libraries it drives: an
    exception of theirs (not an edgeship error) becomes one :class:`CompressionError`
    line naming the model, method, library, node and op type when known, and what to try."""
    from edgeship.models.prepare import prepared

    method = method_for(config)
    fmt = method.input_format(base, source)
    suffix = method.suffix(fmt)
    if out.suffix != suffix:
        raise UsageError(f"--out {out}: this method writes a {suffix} file")
    out.parent.mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    while True:
        try:
            if fmt != "onnx":
                return method.run(Job(base, config, data, out, source, on_epoch, search))
            keep_names = bool(getattr(config, "exclude_nodes", ()))
            with prepared(base, simplify=not keep_names) as ready:
                outcome = method.run(Job(ready.path, config, data, out, source, on_epoch, search))
            break
        except (EdgeshipError, ImportError):  # a missing extra: the CLI's boundary names it
            raise
        except Exception as exc:  # the quantizers, converters, trainers it drives: one line
            cause = cause_of(exc)
            node = _node_to_keep(config, base, cause, len(kept))
            if node is None:
                raise _failed(config, base, cause) from exc
            config = _keeping(config, node)
            kept.append(
                f"node {node!r}{f' ({cause.op_type})' if cause.op_type else ''} kept in float: "
                f"{cause.library or 'the quantizer'} failed on it ({cause.text})"
            )
    if ready.note:
        outcome.notes.insert(0, ready.note)
    outcome.notes[:0] = kept
    return outcome


MAX_NODES_KEPT_FOR_FAILURES = 3
"""How many nodes a method may keep in float, one per retry, because a library failed on
each (an ONNX Runtime quantizer bug on one odd node need not cost the whole model)."""


def _node_to_keep(config: MethodConfig, base: Path, cause: Cause, kept: int) -> str | None:
    """The base's node a library failed at, to keep out of the method and retry; None where
    the method cannot exclude nodes, none is named, it is excluded already, or enough were."""
    excluded = getattr(config, "exclude_nodes", None)
    if excluded is None or not cause.node or kept >= MAX_NODES_KEPT_FOR_FAILURES:
        return None
    model = ModelFile.of(base)
    if model.format != "onnx":
        return None
    node = onnx_graph.owner_node(model.graph, cause.node)
    return node if node and node not in excluded else None


def _keeping(config: MethodConfig, node: str) -> MethodConfig:
    """``config`` (a dataclass with ``exclude_nodes``) with ``node`` excluded too."""
    excluded: tuple[str, ...] = getattr(config, "exclude_nodes")  # noqa: B009
    return replace(config, exclude_nodes=(*excluded, node))  # type: ignore[type-var]


def _failed(config: MethodConfig, base: Path, cause: Cause) -> CompressionError:
    """The one line of a method that a library failed under: the model, the method, the
    library, the node and op type when known, and what to try."""
    tips, tried = [], ""
    if hasattr(config, "exclude_nodes") and ModelFile.of(base).format == "onnx":
        node = onnx_graph.owner_node(ModelFile.of(base).graph, cause.node)
        if node and node in getattr(config, "exclude_nodes"):  # noqa: B009
            tried = f" (with node {node} kept in float too)"
        elif node:
            tips.append(f"--exclude-node {node}")
            if node == cause.node and cause.op_type:
                tips.append(f"--exclude-op {cause.op_type}")
    where = f" {cause.where()}" if cause.where() else ""
    trained = [config.method] if _trains(config) else []
    return CompressionError(
        f"{base.name}: {config.method} failed{where}: {cause.text}{tried}; "
        f"try {'; '.join([*tips, guard.hint([config.method], trained)])}",
        model=str(base),
        method=config.method,
        library=cause.library,
        node=cause.node,
        op_type=cause.op_type,
    )


def finish(
    base: Path,
    out: Path,
    config: AnyConfig,
    split: EvalSplit,
    outcome: Outcome,
    options: CompressOptions,
    target: Target,
    feeds: list[dict[str, np.ndarray]] | None = None,
    sample: dict[str, np.ndarray] | None = None,
) -> CompressionReport:
    """Verify on ``target`` (running ``sample``), measure, compare, guard: the report of
    one produced model. ``feeds``: generated inputs for the comparison when ``split``
    holds no data."""
    _step(options, f"verifying the result on {target.name}")
    report = verified_report(base, out, config, sample, outcome, target)
    on = "generated inputs" if split.held is None else f"{len(split.held)} samples"
    _step(options, f"comparing its outputs with the base's on {on}")
    if split.held is not None:
        base_out, new_out = evaluate.predict(base, split.held), evaluate.predict(out, split.held)
        labels, report.evaluation = split.held.labels, split.evaluation
    else:
        assert feeds is not None
        base_out, new_out = evaluate.predict_feeds(base, feeds), evaluate.predict_feeds(out, feeds)
        labels, report.evaluation = None, evaluate.describe_feeds(feeds)
    report.fidelity = evaluate.fidelity(base_out, new_out, labels)
    report.interface = evaluate.interface(base, out)
    policy = options.guard
    trained = any(_trains(s) for s in steps_of(config))
    report.outputs = judge_outputs(base_out, new_out, policy.output_kinds, policy.limits, trained)
    _guard(report, config, policy)
    report.notes += evaluate.estimate_notes(
        report.fidelity, report.outputs, split.given, generated=split.held is None
    )
    structured = any(method_for(s).structured for s in steps_of(config))
    if structured and report.model.parameters >= report.base.parameters:
        raise CompressionError(
            f"channel pruning removed nothing ({report.model.parameters} parameters)"
        )
    if options.latency or structured:
        _step(
            options,
            f"timing batch-1 latency on {target.name} ({options.latency_rounds} rounds of at "
            f"least {options.latency_seconds:g} s and {options.latency_runs} runs of each model)",
        )
        report.latency = _timed(base, out, target, options, _shapes(base, split, options))
        slower = guard.slower_message(report.latency, options.guard)
        if slower is not None:
            _fail_or_keep(report, config, options.guard, slower, Slower)
        elif structured and report.latency.speedup <= 1.0:
            lat = report.latency
            report.notes.append(
                f"warning: not faster on {target.name} ({lat.model_p50_ms:.4f} vs "
                f"{lat.base_p50_ms:.4f} ms; slower in {lat.rounds_slower} of {lat.rounds} "
                "interleaved rounds)"
            )
    return report


def _timed(
    base: Path,
    out: Path,
    target: Target,
    options: CompressOptions,
    shapes: dict[str, tuple[int, ...]],
) -> Latency:
    """Both models' latency in ``options.latency_rounds`` rounds, and in more when the
    result is slower at the median but too few rounds tell that from noise."""
    timed = functools.partial(
        evaluate.latency,
        base,
        out,
        target,
        options.threads,
        runs=options.latency_runs,
        min_seconds=options.latency_seconds,
        shapes=shapes,
    )
    lat = timed(rounds=options.latency_rounds)
    if guard.slowdown_unsettled(lat, options.guard):
        more = guard.SLOWER_ROUNDS - lat.rounds
        _step(options, f"slower at the median of {lat.rounds} rounds: timing {more} more")
        lat = lat.extended(timed(rounds=more))
    return replace(lat, detectable_slowdown=guard.detectable_slowdown(lat, options.guard))


def _step(options: CompressOptions, text: str) -> None:
    if options.on_step is not None:
        options.on_step(text)


def _guard(report: CompressionReport, config: AnyConfig, policy: GuardPolicy) -> None:
    """Refuse a no-op, a collapse of any output and a result larger than its base, or
    note a kept collapse or larger result."""
    fid, out = report.fidelity, Path(report.model.path)
    assert fid is not None
    base_size, size = report.base.size_bytes, report.model.size_bytes
    if guard.is_no_op(base_size, size, report.outputs):
        raise NoChange(
            f"{config.method} changed nothing: the same size ({size / base_size:.3f}×) and "
            f"identical outputs on {report.evaluation}; {_no_op_hint(report)}"
        )
    reasons = guard.collapse_reasons(report.outputs, fid, policy)
    if report.model.format == "onnx" and report.base.format == "onnx":
        zeroed = guard.zeroed_layers(ModelFile.of(report.base.path).graph, ModelFile.of(out).graph)
        reasons += [f"layer weight {name!r} is all zeros" for name in zeroed[:3]]
    if reasons:
        methods = [s.method for s in steps_of(config)]
        trained = [s.method for s in steps_of(config) if _trains(s)]
        given = [o for s in steps_of(config) for o in _given_options(s)]
        message = guard.collapse_message(
            config.method, reasons, report.evaluation, methods, trained, given
        )
        tried = report.details.get("fallback")
        if tried:
            message += f"; {Fallback.from_dict(tried).refusal}"
        searched = report.details.get("sparsity_search")
        if searched:
            message += f"; {SparsitySearch.from_dict(searched).refusal}"
        if not policy.allow_degraded:
            raise FidelityCollapse(message, reasons)
        report.degraded = "; ".join(reasons)
        report.notes.insert(0, f"DEGRADED (kept: --allow-degraded): {report.degraded}")
    larger = guard.larger_message(base_size, size)
    if larger is not None:
        _fail_or_keep(report, config, policy, larger, Larger)


def _fail_or_keep(
    report: CompressionReport,
    config: AnyConfig,
    policy: GuardPolicy,
    problem: str,
    error: type[CompressionError],
) -> None:
    """Refuse a result for ``problem`` (larger, slower), or note it when the policy keeps
    degraded results."""
    if not policy.allow_degraded:
        raise error(f"{config.method}: {problem}; --allow-degraded keeps it anyway")
    report.degraded = "; ".join(filter(None, [report.degraded, problem]))
    report.notes.insert(0, f"warning: {problem} (kept: --allow-degraded)")


def _trains(config: MethodConfig) -> bool:
    field = method_for(config).training
    return field is not None and getattr(getattr(config, field), "epochs", 0) > 0


def _given_options(config: MethodConfig) -> list[str]:
    """The options of ``config`` a refusal's hint would otherwise suggest."""
    given = {
        "--scope layer": getattr(config, "scope", None) == "layer",
        "--importance activation": getattr(config, "importance", None) == "activation",
        "--calibration entropy": getattr(config, "calibration", None) == "entropy",
        "a lower --sparsity": getattr(config, "sparsity_search", False),  # searched down
    }
    return [option for option, used in given.items() if used]


def _no_op_hint(report: CompressionReport) -> str:
    """Why a method may find nothing to do, from what it reported."""
    if report.details.get("quantized_nodes") == []:
        return "the quantizer found no node it handles (see --exclude-op/--exclude-node)"
    if report.model.format == "tflite":
        return "the model may already be quantized, or hold no weights the quantizer takes"
    return "nothing in the graph is what this method changes"


def verified_report(
    base: Path,
    out: Path,
    config: AnyConfig,
    sample: dict[str, np.ndarray] | None,
    outcome: Outcome,
    target: Target,
) -> CompressionReport:
    """``out`` run once on ``sample`` on ``target`` (or :class:`VerificationError`), and
    its sizes."""
    verified = evaluate.verify(out, sample, target)
    return CompressionReport(
        method=config.method,
        parameters=config_to_dict(config),
        base=stats.model_stats(base),
        model=stats.model_stats(out),
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
    sample: dict[str, np.ndarray] | None = None,
    on_epoch: EpochProgress | None = None,
    search: Search | None = None,
) -> tuple[list[CompressionReport], Outcome]:
    """One method: its outcome (``search``: for a method that searches). Several (a
    chain): each applied to the previous one's output and verified, with a report per
    step; the notes of all."""
    if len(steps) == 1:
        return [], run_method(base, source, steps[0], data, out, on_epoch, search)
    reports: list[CompressionReport] = []
    current = base
    with tempfile.TemporaryDirectory(prefix="edgeship-chain-") as tmp:
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            method = method_for(step)
            suffix = method.suffix(ModelFile.of(current).format)
            path = out if last else Path(tmp) / f"step{i}{suffix}"
            outcome = run_method(current, source if i == 0 else None, step, data, path, on_epoch)
            report = verified_report(current, path, step, sample, outcome, target)
            if not last:
                report.model.path = f"(step {i + 1})"
            reports.append(report)
            current = path
    return reports, Outcome(notes=[n for r in reports for n in r.notes])
