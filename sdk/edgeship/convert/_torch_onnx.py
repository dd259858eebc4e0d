"""PyTorch → ONNX with ``torch.onnx`` (the TorchScript exporter: mature, folds BatchNorm).

Inputs and outputs keep their names; axis 0 of every input and output is a dynamic
``batch`` dimension, so the file runs at any batch size.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.convert._result import Converted
from edgeship.convert._torch_source import TorchSource, positional
from edgeship.core.errors import ConversionError, UnsupportedOpError

if TYPE_CHECKING:
    from edgeship.convert._routes import Job

__all__ = ["CONVERTER", "convert", "run"]

CONVERTER = "torch.onnx"


def run(job: Job) -> Converted:
    """The ``pytorch -> onnx`` route (see :mod:`.routes`)."""
    return convert(job.module(), job.out, job.config.opset)


def convert(source: TorchSource, out: Path, opset: int) -> Converted:
    import onnx
    import torch

    inputs = source.input_names
    outputs = source.output_names
    args = tuple(torch.from_numpy(source.example[n]) for n in inputs)
    dynamic = {name: {0: "batch"} for name in [*inputs, *outputs]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                positional(source.module),
                args,
                str(out),
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
        onnx.checker.check_model(str(out), full_check=True)
    except Exception as exc:
        raise _translate(exc, opset) from exc
    return Converted(
        converter=f"{CONVERTER} {torch.__version__} (TorchScript exporter, opset {opset})",
        notes=[f"dynamic batch axis 'batch' on inputs {inputs} and outputs {outputs}"],
    )


def _translate(exc: Exception, opset: int) -> ConversionError:
    text = str(exc)
    marker = "Exporting the operator "
    if marker in text:
        op = text.split(marker, 1)[1].split(" ", 1)[0].strip("'\"`")
        return UnsupportedOpError(f"torch.onnx (opset {opset})", [op], step="convert")
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return ConversionError(f"torch.onnx export failed: {first.strip()[:300]}", step="convert")
