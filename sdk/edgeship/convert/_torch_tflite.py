"""PyTorch → TFLite with litert-torch, at the example inputs' static shapes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.convert._litert import export_tflite
from edgeship.convert._result import Converted
from edgeship.convert._torch_source import TorchSource, identifier

if TYPE_CHECKING:
    from edgeship.convert._routes import Job

__all__ = ["convert", "run"]


def run(job: Job) -> Converted:
    """The ``pytorch -> tflite`` route (see :mod:`.routes`)."""
    return convert(job.module(), job.out, job.config.batch)


def convert(source: TorchSource, out: Path, batch: int) -> Converted:
    example = {n: a[:batch] if a.ndim else a for n, a in source.example.items()}
    renamed = {identifier(n): a for n, a in example.items()}
    notes = [
        f"input {n!r} is {identifier(n)!r} in the LiteRT signature"
        for n in example
        if identifier(n) != n
    ]
    module = source.named()
    module.input_order = list(renamed)
    converter = export_tflite(module, renamed, out)
    shapes = {n: list(a.shape) for n, a in example.items()}
    notes.append(f"static shapes {shapes} (LiteRT models have a fixed batch of {batch})")
    return Converted(converter=converter, notes=notes)
