"""A PyTorch model as a conversion source: ``module:factory`` plus weights, or a live module.

The factory is imported by name (the current directory is searched too, as ``python -m``
would), called without arguments, and given the state dict of a checkpoint file read
with ``weights_only=True`` (a plain state dict, or one under ``state_dict`` /
``model_state_dict``). Inputs and outputs get names: given ones, else the parameter
names of ``forward`` and ``output`` / ``output_<i>``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import keyword
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeship.core.errors import ConversionError, said_by
from edgeship_runtime.signature import Signature, TensorSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "NamedOutputs",
    "TorchRunner",
    "TorchSource",
    "build_module",
    "flatten_outputs",
    "forward_input_names",
    "identifier",
    "load_factory",
    "load_weights",
    "output_keys",
    "positional",
    "torch_source",
]

_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass
class TorchSource:
    """A module in eval mode, example inputs by name, and the names of its outputs."""

    module: nn.Module
    example: dict[str, np.ndarray]
    output_names: list[str]
    description: str

    @property
    def input_names(self) -> list[str]:
        return list(self.example)

    def signature(self, batch_axis: bool = True) -> Signature:
        """Inputs as the examples are shaped, axis 0 symbolic (``batch``) when a batch axis."""
        import torch

        with torch.no_grad():
            outputs = self.named()(**_tensors(self.example))
        return Signature(
            tuple(_spec(n, a, batch_axis) for n, a in self.example.items()),
            tuple(_spec(n, t.detach().numpy(), batch_axis) for n, t in outputs.items()),
        )

    def named(self) -> Any:
        return NamedOutputs(self.module, self.input_names, self.output_names)


def _spec(name: str, array: np.ndarray, batch_axis: bool) -> TensorSpec:
    shape: list[int | str | None] = list(array.shape)
    if shape and batch_axis:
        shape[0] = "batch"
    return TensorSpec(name, tuple(shape), array.dtype.name)


def _tensors(feeds: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}


@functools.cache
def _named_outputs_class() -> type:
    from torch import nn

    class _NamedOutputs(nn.Module):
        """``forward(**inputs) -> {name: tensor}``: keyword inputs, outputs flattened by name."""

        def __init__(self, inner: nn.Module, inputs: Sequence[str], outputs: Sequence[str]):
            super().__init__()
            self.inner = inner
            self.input_order = list(inputs)
            self.output_order = list(outputs)

        def forward(self, **inputs: Any) -> dict[str, Any]:
            flat = flatten_outputs(self.inner(*[inputs[n] for n in self.input_order]))
            return dict(zip(self.output_order, flat, strict=True))

    return _NamedOutputs


def NamedOutputs(module: nn.Module, inputs: Sequence[str], outputs: Sequence[str]) -> Any:
    """Wrap ``module`` so it takes inputs by keyword and returns outputs by name."""
    return _named_outputs_class()(module, inputs, outputs).eval()


def positional(module: nn.Module) -> nn.Module:
    """Wrap ``module`` so its outputs come back as one flat tuple (for the ONNX exporter)."""
    from torch import nn

    class _Flat(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> tuple[Any, ...]:
            return tuple(flatten_outputs(self.inner(*args)))

    return _Flat(module).eval()


def flatten_outputs(value: Any) -> list[Any]:
    """Tensors of a (nested) tensor / tuple / list / dict, in order."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten_outputs(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flatten_outputs(v)]
    return [value]


def output_keys(value: Any) -> list[str] | None:
    """Keys of a flat dict output (used as names), else None."""
    nested = (dict, list, tuple)
    if isinstance(value, dict) and all(not isinstance(v, nested) for v in value.values()):
        return [str(k) for k in value]
    return None


# ---------------------------------------------------------------------------- loading


def load_factory(spec: str) -> Callable[[], Any]:
    """``package.module:factory`` or ``path/to/file.py:factory``."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConversionError(
            f"bad factory {spec!r}: expected module:factory (e.g. tools.zoo.models:cnn)",
            step="load",
        )
    module = _import(module_name, spec)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConversionError(
            f"factory {spec!r}: module {module_name!r} has no callable {attr!r}", step="load"
        )
    return factory


def _import(module_name: str, spec: str) -> Any:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        if module_name.endswith(".py"):
            return _import_file(Path(module_name))
        return importlib.import_module(module_name)
    except ConversionError:
        raise
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise ConversionError(
            f"cannot import the factory {spec!r}: {type(exc).__name__}: {exc}", step="load"
        ) from exc
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ImportError(f"no such file {path}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_module(factory_spec: str, weights: Path | None) -> nn.Module:
    """Call the factory and load ``weights`` into what it returns; eval mode."""
    from torch import nn

    factory = load_factory(factory_spec)
    try:
        module = factory()
    except Exception as exc:
        raise ConversionError(
            f"factory {factory_spec!r} failed: {type(exc).__name__}: {exc}", step="load"
        ) from exc
    if not isinstance(module, nn.Module):
        raise ConversionError(
            f"factory {factory_spec!r} returned {type(module).__name__}, not a torch.nn.Module",
            step="load",
        )
    if weights is not None:
        load_weights(module, weights)
    return module.eval()


def load_weights(module: nn.Module, path: Path) -> None:
    import torch

    if not Path(path).is_file():
        raise ConversionError(f"{path}: no such checkpoint file", step="load")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConversionError(
            f"{path}: not a readable state-dict checkpoint ({said_by(exc, lines=2)}); pickled "
            "whole modules are not loaded: save model.state_dict()",
            step="load",
        ) from exc
    for key in _CHECKPOINT_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise ConversionError(f"{path}: holds {kind}, not a state dict", step="load")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ConversionError(
            f"{path} does not fit the factory's module: {said_by(exc, lines=2)}", step="load"
        ) from exc


# ---------------------------------------------------------------------------- names


def forward_input_names(module: nn.Module, count: int) -> list[str]:
    """The first ``count`` positional parameter names of ``forward``, else ``input_<i>``."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in positional_kinds]
    if len(names) >= count:
        return names[:count]
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def identifier(name: str) -> str:
    """A Python identifier for ``name`` (LiteRT signatures take inputs as keywords)."""
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident):
        ident = f"input_{ident}"
    return ident


def torch_source(
    module: nn.Module,
    example: Mapping[str, np.ndarray],
    output_names: Sequence[str] = (),
    description: str = "torch module",
) -> TorchSource:
    """A :class:`TorchSource` whose output names are checked against one real forward."""
    import torch

    module = module.eval()
    with torch.no_grad():
        try:
            outputs = module(*_tensors(example).values())
        except Exception as exc:
            raise ConversionError(
                f"{description} failed on the example inputs "
                f"{ {k: list(v.shape) for k, v in example.items()} }: {said_by(exc, lines=2)}",
                step="load",
            ) from exc
    flat = flatten_outputs(outputs)
    if not all(isinstance(t, torch.Tensor) for t in flat):
        raise ConversionError(f"{description} returns non-tensor outputs", step="load")
    names = list(output_names) or output_keys(outputs) or _default_outputs(len(flat))
    if len(names) != len(flat):
        raise ConversionError(
            f"{len(names)} output name(s) {names} for {len(flat)} output(s)", step="load"
        )
    return TorchSource(module, dict(example), names, description)


def _default_outputs(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


class TorchRunner:
    """Runs a :class:`TorchSource` in this process (a :class:`~.runners.Runner`)."""

    def __init__(self, source: TorchSource) -> None:
        self.source = source
        self.signature = source.signature()
        self._named = source.named()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            outputs = self._named(**_tensors(feeds))
        return {k: v.detach().numpy() for k, v in outputs.items()}
