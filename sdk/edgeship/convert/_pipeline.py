"""One conversion end to end: load the source, convert, verify on a target, then publish.

The result is written beside ``OUT`` under a temporary name and moved into place only
when verification passes (or ``force`` is set), so a failed conversion leaves no file
that looks usable. The converter is the registered route's (:mod:`.routes`); the call
returns a :class:`~.result.ConversionResult`: the file and its report.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeship.convert._config import DEFAULT_OPSET, ConvertConfig
from edgeship.convert._result import ConversionReport, ConversionResult
from edgeship.convert._routes import Job, Route, get_route
from edgeship.convert._torch_source import (
    TorchRunner,
    TorchSource,
    build_module,
    forward_input_names,
    torch_source,
)
from edgeship.core.errors import VerificationError
from edgeship.core.extras import missing_extras
from edgeship.models.output import staged
from edgeship.models.ref import ModelRef
from edgeship.models.runners import Runner
from edgeship.models.verify import Tolerance, VerifyData, failure_message, verify
from edgeship.targets import LocalTarget, Target
from edgeship_runtime.errors import ModelError, UsageError
from edgeship_runtime.inputs import LABELS_KEY, load_arrays, named_as

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EXPORT_ROWS", "convert", "convert_module", "torch_example"]

EXPORT_ROWS = 2
"""Rows of example input traced for ONNX (2, so no size-1 batch gets specialised)."""


@missing_extras()
def convert(config: ConvertConfig, target: Target | None = None) -> ConversionResult:
    """Convert ``config.source`` to ``config.output`` and verify it on ``target`` (local)."""
    src, dst = config.formats()
    route = get_route(src, dst)
    with _target(target) as tgt:
        if src == "pytorch":
            factory, weights = config.factory_and_weights()
            module = build_module(factory, weights)
            example = torch_example(module, config)
            source = torch_source(module, example, config.output_names, factory)
            ref = ModelRef(_describe(config), "pytorch")
            return _finish(TorchRunner(source), source, ref, config, route, tgt)
        path = Path(config.source)
        if not path.is_file():
            raise ModelError(f"{path}: no such model file", path=str(path))
        with tgt.load(path) as runner:
            return _finish(runner, path, ModelRef.of_file(path, src), config, route, tgt)


@missing_extras()
def convert_module(
    module: nn.Module,
    example_inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    output: Path | str,
    *,
    output_names: Sequence[str] = (),
    verify_data: VerifyData | None = None,
    tolerance: Tolerance | None = None,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    target: Target | None = None,
) -> ConversionResult:
    """Convert a live ``nn.Module`` (the Python API's PyTorch source) to ``.onnx``/``.tflite``.

    ``example_inputs`` by name, or in ``forward``'s order (named after its parameters).
    """
    if not isinstance(example_inputs, Mapping):
        arrays = list(example_inputs)
        example_inputs = dict(zip(forward_input_names(module, len(arrays)), arrays, strict=True))
    config = ConvertConfig(
        source="module:object",
        output=Path(output),
        source_format="pytorch",
        output_names=tuple(output_names),
        opset=opset,
        batch=batch,
        verify=verify_data or VerifyData(),
        tolerance=tolerance or Tolerance(),
        force=force,
    )
    source = torch_source(module, dict(example_inputs), config.output_names, type(module).__name__)
    route = get_route(*config.formats())
    with _target(target) as tgt:
        ref = ModelRef(f"<{type(module).__name__}>", "pytorch")
        return _finish(TorchRunner(source), source, ref, config, route, tgt)


def _finish(
    source: Runner,
    model: Path | TorchSource,
    ref: ModelRef,
    config: ConvertConfig,
    route: Route,
    target: Target,
) -> ConversionResult:
    """Convert ``model`` by ``route`` beside the output, verify the result against
    ``source`` (running ``model``) on ``target``, and publish it if it passes."""
    out, dst = Path(config.output), route.result
    with staged(out) as tmp:
        t0 = time.perf_counter()
        converted = route.run(Job(model, source.signature, tmp, config))
        convert_s = time.perf_counter() - t0
        with target.load(tmp) as result:
            tolerance = config.tolerance
            if converted.tolerance is not None and tolerance == Tolerance():  # not the user's
                tolerance = converted.tolerance
            report = verify(source, result, config.verify, tolerance)
        verify_s = time.perf_counter() - t0 - convert_s
        passed = report.passed or config.force
        if passed:
            os.replace(tmp, out)
    conversion = ConversionReport(
        route=route.name,
        source=ref,
        result=ModelRef.of_file(out, dst) if passed else ModelRef(str(out), dst),
        converter=converted.converter,
        verification=report,
        notes=converted.notes,
        layout_changed=any(n.startswith("LAYOUT CHANGED") for n in report.notes),
        forced=config.force and not report.passed,
        written=passed,
        convert_s=round(convert_s, 3),
        verify_s=round(verify_s, 3),
    )
    if not passed:
        raise VerificationError(failure_message(report, out.name), conversion, step="verify")
    return ConversionResult(out, conversion)


@contextlib.contextmanager
def _target(target: Target | None) -> Iterator[Target]:
    if target is not None:
        yield target
        return
    with LocalTarget() as local:
        yield local


def torch_example(module: nn.Module, config: ConvertConfig) -> dict[str, np.ndarray]:
    """Example inputs for tracing: ``--shape`` (float32, seeded) or rows of ``--data``."""
    rows = max(EXPORT_ROWS, config.batch)
    if config.shapes:
        rng = np.random.default_rng(config.verify.seed)
        names = list(config.input_names) or list(config.shapes)
        shapes = list(config.shapes.values())
        if len(names) != len(shapes):
            raise UsageError(f"{len(names)} --input-names for {len(shapes)} --shape options")
        return {
            n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, shapes, strict=True)
        }
    if config.verify.data is None:
        raise UsageError(
            "a PyTorch source needs example inputs: give --shape NAME=D1,D2,... or --data FILE"
        )
    arrays = {k: v for k, v in load_arrays(str(config.verify.data)).items() if k != LABELS_KEY}
    names = list(config.input_names)
    if not names:
        keyed = "" not in arrays
        names = list(arrays) if keyed else forward_input_names(module, len(arrays))
    if len(names) != len(arrays):
        raise UsageError(f"{len(names)} input name(s) {names} for {len(arrays)} array(s) of data")
    return {n: a[:rows] for n, a in named_as(arrays, names).items()}


def _describe(config: ConvertConfig) -> str:
    factory, weights = config.factory_and_weights()
    return f"{factory} + {weights}" if weights is not None else factory
