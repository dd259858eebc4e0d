"""The one entry point, :func:`compress`, dispatching on the config type, and its helpers.

Every method writes its model to ``out``; then, shared here: the model is loaded and run
once on the target (never a silently broken model), its size/parameters/sparsity are
measured, and with data its accuracy and fidelity against the base. A torch model is
exported to ONNX beside ``out`` (``<out stem>.base.onnx``) to serve as the base.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship_runtime.model import detect_format

from ..errors import UsageError
from . import evaluate, onnx_graph
from .config import (
    AnyConfig,
    ChainConfig,
    ChannelPruneConfig,
    DistillConfig,
    MethodConfig,
    PruneConfig,
    QuantizeConfig,
    config_to_dict,
)
from .data import DataLike, Dataset, check_dataset, load_dataset
from .errors import CompressionError
from .record import CompressionRecord, CompressionResult, Outcome

if TYPE_CHECKING:
    from .torch_model import TorchModel

ModelLike = str | Path
"""A model file (.onnx/.tflite) or a :class:`~edgeship.compress.torch_model.TorchModel`."""


@dataclass(frozen=True)
class CompressOptions:
    """Where produced models are run, and whether batch-1 latency is measured (always for
    channel pruning, which must be faster). ``threads``: runtime threads for latency."""

    target: str = "local"
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
    """Compress ``model`` as ``config`` says; write ``out``; return it with its record."""
    options = options or CompressOptions()
    out = Path(out)
    t0 = time.perf_counter()
    dataset = load_dataset(data)
    base, source = _base(model, dataset, out)
    if dataset is not None:
        check_dataset(evaluate.signature(base), dataset)
    if isinstance(config, ChainConfig):
        steps = _chain(base, source, config, dataset, out, options)
        outcome = Outcome(notes=[n for s in steps for n in s.notes])
    else:
        steps, outcome = [], run_method(base, source, config, dataset, out)
    record = finish(base, out, config, dataset, outcome, options)
    record.steps = steps
    if source is not None:
        record.notes.insert(0, f"torch model {source.factory} exported to {base} as the base")
    record.seconds = round(time.perf_counter() - t0, 3)
    return CompressionResult(out, record)


def run_method(
    base: Path,
    source: TorchModel | None,
    config: MethodConfig,
    data: Dataset | None,
    out: Path,
) -> Outcome:
    """Run one method, writing ``out``; its outcome (details and notes)."""
    fmt = detect_format(str(base))
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(config, QuantizeConfig):
        from .quantize import quantize_onnx
        from .quantize_tflite import quantize_tflite

        _suffix(out, ".tflite" if fmt == "tflite" else ".onnx")
        return (quantize_tflite if fmt == "tflite" else quantize_onnx)(base, config, data, out)
    _suffix(out, ".onnx")
    if isinstance(config, DistillConfig):
        from .distill import distill

        return distill(base, source, config, data, out)
    if fmt != "onnx":
        raise UsageError(f"{config.method} works on ONNX or torch models, not {fmt}")
    if isinstance(config, PruneConfig):
        from .prune import prune_weights

        return prune_weights(base, config, data, out)
    if isinstance(config, ChannelPruneConfig):
        if source is not None:
            from .channels_torch import prune_channels_torch

            return prune_channels_torch(source, config, data, out)
        from .channels import prune_channels_onnx

        return prune_channels_onnx(base, config, data, out)
    raise UsageError(f"unknown compression config {type(config).__name__}")


def finish(
    base: Path,
    out: Path,
    config: AnyConfig,
    data: Dataset | None,
    outcome: Outcome,
    options: CompressOptions,
    measure: bool = True,
) -> CompressionRecord:
    """Verify on the target, measure, compare: the record of one produced model.

    ``measure=False`` (a chain's inner steps) skips fidelity and latency.
    """
    verified = evaluate.verify(out, evaluate.first_sample(data), options.target)
    record = CompressionRecord(
        method=config.method,
        parameters=config_to_dict(config),
        base=onnx_graph.model_stats(base),
        model=onnx_graph.model_stats(out),
        verified_on=verified,
        details=outcome.details,
        notes=list(outcome.notes),
    )
    if not measure:
        return record
    if data is not None:
        record.fidelity = evaluate.fidelity(
            evaluate.predict(base, data), evaluate.predict(out, data), data.labels
        )
    structured = _has_channel_pruning(config)
    if structured and record.model.parameters >= record.base.parameters:
        raise CompressionError(
            f"channel pruning removed nothing ({record.model.parameters} parameters)"
        )
    if options.latency or structured:
        record.latency = evaluate.latency(
            base,
            out,
            options.target,
            options.threads,
            options.latency_rounds,
            options.latency_runs,
        )
        if structured and record.latency.speedup <= 1.0:
            record.notes.append(
                f"warning: not faster on {options.target} "
                f"({record.latency.model_p50_ms:.4f} vs {record.latency.base_p50_ms:.4f} ms)"
            )
    return record


def _chain(
    base: Path,
    source: TorchModel | None,
    config: ChainConfig,
    data: Dataset | None,
    out: Path,
    options: CompressOptions,
) -> list[CompressionRecord]:
    records, current = [], base
    with tempfile.TemporaryDirectory(prefix="edgeship-chain-") as tmp:
        for i, step in enumerate(config.steps):
            last = i == len(config.steps) - 1
            target = out if last else Path(tmp) / f"step{i}{_suffix_for(current, step)}"
            outcome = run_method(current, source if i == 0 else None, step, data, target)
            step_record = finish(current, target, step, data, outcome, options, measure=False)
            step_record.model.path = str(target) if last else f"(step {i + 1})"
            records.append(step_record)
            current = target
    return records


def _has_channel_pruning(config: AnyConfig) -> bool:
    steps = config.steps if isinstance(config, ChainConfig) else (config,)
    return any(isinstance(s, ChannelPruneConfig) for s in steps)


def _suffix_for(current: Path, step: MethodConfig) -> str:
    if isinstance(step, QuantizeConfig) and detect_format(str(current)) == "tflite":
        return ".tflite"
    return ".onnx"


def _suffix(out: Path, suffix: str) -> None:
    if out.suffix != suffix:
        raise UsageError(f"--out {out}: this method writes a {suffix} file")


def _base(model: object, data: Dataset | None, out: Path) -> tuple[Path, TorchModel | None]:
    """The base model file; a torch model is exported to ``<out>.base.onnx`` first."""
    if not isinstance(model, str | Path):
        from .torch_model import TorchModel, export_onnx

        if not isinstance(model, TorchModel):
            raise UsageError(f"model must be a file path or a TorchModel, not {type(model)}")
        if data is None:
            raise UsageError("a torch model needs --data (its input names and shapes)")
        base = out.with_name(f"{out.stem}.base.onnx")
        export_onnx(model.build(), data.take(2).feeds, base, data.names)
        return base, model
    path = Path(model)
    detect_format(str(path))  # ModelError for a missing/unknown file
    if path.resolve() == out.resolve():
        raise UsageError(f"--out {out} would overwrite the model itself")
    return path, None
