"""The registry of conversion routes: source format → result format → converter.

A :class:`Route` names its converter as ``"module:function"`` (``".module"``: relative to
this package), imported when the route is first used, so registering imports nothing
(torch, LiteRT and TensorFlow load only for the route that needs them). A converter takes
a :class:`Job` and returns a :class:`~.result.Converted`. A (source, result) pair is
registered once; registering it again is an error.

The built-in routes (registered at the bottom of this module; each converter module's
``run``):

    pytorch → onnx     torch_onnx     torch.onnx, named inputs/outputs, dynamic batch
    pytorch → tflite   torch_tflite   litert-torch, static shapes
    onnx    → tflite   onnx_tflite    onnx2torch, then litert-torch (no TensorFlow)
    tflite  → onnx     tflite_onnx    tf2onnx (needs TensorFlow: the tflite-onnx extra)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeship_runtime.errors import UsageError
from edgeship_runtime.signature import Signature

if TYPE_CHECKING:
    from edgeship.convert._config import ConvertConfig
    from edgeship.convert._result import Converted
    from edgeship.convert._torch_source import TorchSource

__all__ = ["Converter", "Job", "Route", "get_route", "register_route", "registered_routes"]


@dataclass(frozen=True)
class Job:
    """One conversion for a converter: the source (a model file, or a traced PyTorch
    module), the source's signature, where to write, and the config."""

    source: Path | TorchSource
    signature: Signature
    out: Path
    config: ConvertConfig

    def file(self) -> Path:
        """The source model file (routes from ONNX or TFLite)."""
        if not isinstance(self.source, Path):
            raise TypeError("this route converts model files, not PyTorch modules")
        return self.source

    def module(self) -> TorchSource:
        """The traced PyTorch source (routes from PyTorch)."""
        if isinstance(self.source, Path):
            raise TypeError("this route converts PyTorch modules, not model files")
        return self.source


Converter = Callable[[Job], "Converted"]


@dataclass(frozen=True)
class Route:
    """``source`` → ``result`` by ``converter`` (``"module:function"``); ``summary`` says
    how, for the docs and ``--help``."""

    source: str
    result: str
    converter: str
    summary: str = ""

    def __post_init__(self) -> None:
        if ":" not in self.converter:
            raise ValueError(f"route converter is 'module:function', not {self.converter!r}")

    @property
    def name(self) -> str:
        return f"{self.source}->{self.result}"

    def run(self, job: Job) -> Converted:
        module, _, function = self.converter.partition(":")
        convert: Converter = getattr(importlib.import_module(module, __package__), function)
        return convert(job)


_REGISTRY: dict[tuple[str, str], Route] = {}


def register_route(route: Route) -> None:
    """Register ``route``; a (source, result) pair may be registered only once."""
    key = (route.source, route.result)
    if key in _REGISTRY:
        raise ValueError(f"conversion route {route.name} is already registered")
    _REGISTRY[key] = route


def registered_routes() -> list[Route]:
    """Registered routes, in registration order."""
    return list(_REGISTRY.values())


def get_route(source: str, result: str) -> Route:
    """The route from ``source`` to ``result`` format, or a :class:`UsageError` naming the
    known ones."""
    try:
        return _REGISTRY[(source, result)]
    except KeyError:
        if source == result:
            raise UsageError(
                f"the source is already {result}: nothing to convert (see `edgeship optimize`)"
            ) from None
        known = ", ".join(r.name for r in _REGISTRY.values())
        raise UsageError(f"no conversion from {source} to {result} (routes: {known})") from None


for _route in (
    Route("pytorch", "onnx", "._torch_onnx:run", "torch.onnx, named inputs/outputs, dynamic batch"),
    Route("pytorch", "tflite", "._torch_tflite:run", "litert-torch, static shapes"),
    Route("onnx", "tflite", "._onnx_tflite:run", "onnx2torch, then litert-torch (no TensorFlow)"),
    Route(
        "tflite", "onnx", "._tflite_onnx:run", "tf2onnx (needs TensorFlow: the tflite-onnx extra)"
    ),
):
    register_route(_route)
del _route
