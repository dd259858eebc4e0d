"""Torch models given by the user (``module:factory`` + an optional state dict), and export.

The factory is called with no arguments; a state dict (``torch.save(model.state_dict())``)
is then loaded strictly. Exported ONNX keeps the data's input names, a dynamic batch axis,
and one output named ``output``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeship.core.errors import CompressionError, ModelError, UsageError

__all__ = ["OPSET", "OUTPUT_NAME", "TorchModel", "count_parameters", "export_onnx", "load_factory"]

OPSET = 17
OUTPUT_NAME = "output"


@dataclass(frozen=True)
class TorchModel:
    """A torch module to build: ``factory`` is ``"package.module:callable"``."""

    factory: str
    state_dict: Path | None = None

    def __post_init__(self) -> None:
        load_factory(self.factory)  # fail early on a bad spec
        if self.state_dict is not None and not Path(self.state_dict).is_file():
            raise ModelError(f"{self.state_dict}: no such state dict", path=str(self.state_dict))

    def build(self) -> nn.Module:
        module = load_factory(self.factory)()
        if not isinstance(module, nn.Module):
            raise UsageError(f"{self.factory} returned {type(module).__name__}, not a nn.Module")
        if self.state_dict is not None:
            try:
                state = torch.load(str(self.state_dict), map_location="cpu", weights_only=True)
                module.load_state_dict(state)
            except (RuntimeError, OSError, KeyError, TypeError) as exc:
                raise ModelError(
                    f"{self.state_dict}: does not load into {self.factory}: "
                    f"{str(exc).splitlines()[0]}",
                    path=str(self.state_dict),
                ) from exc
        return module.eval()


def load_factory(spec: str) -> Callable[[], Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected 'module:factory', got {spec!r}")
    with _cwd_importable():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(f"cannot import {module_name!r} for {spec!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"{spec!r}: {module_name} has no callable {attr!r}")
    return factory


@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    """Like ``python -m``: modules of the working directory can be named."""
    added = "" not in sys.path
    if added:
        sys.path.insert(0, "")
    try:
        yield
    finally:
        if added:
            sys.path.remove("")


def export_onnx(
    module: nn.Module, example: dict[str, np.ndarray], path: Path, input_names: Sequence[str]
) -> Path:
    """TorchScript exporter (mature; folds BatchNorm), dynamic batch axis, opset 17."""
    import onnx

    module.eval()
    args = tuple(torch.from_numpy(a[:2]) for a in example.values())
    names = list(input_names)
    dynamic = {n: {0: "batch"} for n in [*names, OUTPUT_NAME]}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
            # torch's own layers (MultiheadAttention) compare traced shapes in assertions
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="torch.nn")
            torch.onnx.export(
                module,
                args,
                buffer,  # type: ignore[arg-type]
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many unrelated types
        raise CompressionError(f"could not export the torch model to ONNX: {exc}") from exc
    model = onnx.load_from_string(buffer.getvalue())
    from edgeship.models import onnx_graph

    return onnx_graph.save(model, path)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
