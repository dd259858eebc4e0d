"""What a conversion is asked to do: formats, names, shapes, verification; validated here.

The formats must be joined by a registered route (:mod:`.routes`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgeship.convert._routes import get_route
from edgeship.models.verify import Tolerance, VerifyData
from edgeship_runtime.errors import UsageError
from edgeship_runtime.formats import get_format

__all__ = ["DEFAULT_OPSET", "FORMATS", "SUFFIXES", "ConvertConfig", "format_of", "is_factory_spec"]

FORMATS = ("pytorch", "onnx", "tflite")
# the model formats' canonical suffixes come from the runtime's format table (``.ort`` is
# ONNX Runtime's own serialisation, which conversion neither reads nor writes)
SUFFIXES = {
    **{get_format(fmt).suffix: fmt for fmt in ("onnx", "tflite")},
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".ckpt": "pytorch",
}
DEFAULT_OPSET = 17


def format_of(name: str, flag: str | None, role: str) -> str:
    """The format ``flag`` names, else the one ``name``'s suffix implies."""
    if flag is not None:
        if flag not in FORMATS:
            raise UsageError(f"unknown {role} format {flag!r} (known: {', '.join(FORMATS)})")
        return flag
    if is_factory_spec(name):
        return "pytorch"
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in SUFFIXES:
        known = ", ".join(sorted(SUFFIXES))
        raise UsageError(
            f"{name}: unknown {role} format {suffix or '(no suffix)'!r} "
            f"(known suffixes: {known}; or give --from/--to)"
        )
    return SUFFIXES[suffix]


def is_factory_spec(name: str) -> bool:
    """``pkg.module:factory`` or ``file.py:factory`` (and not an existing file)."""
    head, sep, tail = name.rpartition(":")
    return bool(sep and head and tail.isidentifier()) and not Path(name).exists()


@dataclass(frozen=True)
class ConvertConfig:
    """One conversion.

    ``source`` is a model file, or ``module:factory`` for a PyTorch model (``weights``: its
    state dict). A PyTorch source needs example inputs: ``shapes`` (float32) or rows of
    ``verify.data``. ``batch`` is the fixed batch of TFLite results (LiteRT models are
    static; ONNX results keep a dynamic batch axis). ``opset`` is the ONNX opset written.
    """

    source: str
    output: Path
    source_format: str | None = None
    output_format: str | None = None
    factory: str | None = None
    weights: Path | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    opset: int = DEFAULT_OPSET
    batch: int = 1
    verify: VerifyData = field(default_factory=VerifyData)
    tolerance: Tolerance = field(default_factory=Tolerance)
    force: bool = False

    def __post_init__(self) -> None:
        if not 7 <= self.opset <= 30:
            raise UsageError(f"--opset must lie in 7..30, got {self.opset}")
        if self.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {self.batch}")
        src, dst = self.formats()
        if src == dst:
            raise UsageError(
                f"{self.source} is already {dst}: nothing to convert (see `edgeship optimize`)"
            )
        if dst == "pytorch":
            raise UsageError("converting to PyTorch is not supported (only from it)")
        get_route(src, dst)
        if src == "pytorch" and self.factory is None and not is_factory_spec(self.source):
            raise UsageError(
                f"{self.source}: a PyTorch checkpoint needs --factory module:function "
                "that builds the module"
            )
        if src != "pytorch" and (self.factory or self.weights):
            raise UsageError("--factory/--weights apply to PyTorch sources only")

    def formats(self) -> tuple[str, str]:
        return (
            format_of(self.source, self.source_format, "input"),
            format_of(str(self.output), self.output_format, "output"),
        )

    def factory_and_weights(self) -> tuple[str, Path | None]:
        """(factory spec, checkpoint) of a PyTorch source."""
        if self.factory is not None:
            return self.factory, self.weights or Path(self.source)
        return self.source, self.weights
