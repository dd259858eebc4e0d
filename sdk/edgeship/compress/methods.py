"""The registry of compression methods: name → config type, runners, formats read and written.

A :class:`Method` says which frozen config class holds its settings, which function runs
it for each kind of base model it reads (``"onnx"``, ``"tflite"``, or ``"torch"`` for a
method that works on the user's torch model itself rather than on its ONNX export), the
format it writes for each, and which config field (if any) holds its training settings.
Runners are named ``"module:function"`` (``".module"``: relative to this package) and
imported on first use, so registering imports nothing heavy: torch loads only when a
method that trains or traces runs. A name is registered once; a second time is an error.

The built-in methods are registered in ``edgeship.compress`` (its ``__init__``), as the
runtime's backends are in ``edgeship_runtime.backends``.

>>> get_method("int8-static").output_format("tflite")  # doctest: +SKIP
'tflite'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from edgeship.core.errors import UsageError
from edgeship.models.model_file import ModelFile
from edgeship_runtime.formats import get_format

if TYPE_CHECKING:
    from edgeship.compress._data import Dataset
    from edgeship.compress._search import Search
    from edgeship.compress.training.loop import EpochProgress
    from edgeship.compress.training.torch_model import TorchModel

__all__ = [
    "TORCH",
    "C",
    "Job",
    "Method",
    "MethodConfig",
    "Outcome",
    "Runner",
    "get_method",
    "method_for",
    "method_names",
    "register_method",
]

TORCH = "torch"
"""The pseudo-format of a runner that takes the user's torch model (``Job.source``)."""


class MethodConfig(Protocol):
    """What every method's config offers: the method's name, and what it needs data for."""

    @property
    def method(self) -> str: ...

    def needs_data(self) -> str | None:
        """What the data is for (a phrase), or None when the method works without data."""
        ...


C = TypeVar("C", bound=MethodConfig)


@dataclass(frozen=True)
class Job(Generic[C]):
    """One run of a method: ``base`` (a model file) → ``out``, as ``config`` says.

    ``source`` is the torch model ``base`` was exported from, when there is one;
    ``on_epoch`` hears of a training method's epochs; ``search``: inputs and thresholds
    for a method that searches for settings that hold the model (the INT8 fallback).
    """

    base: Path
    config: C
    data: Dataset | None
    out: Path
    source: TorchModel | None = None
    on_epoch: EpochProgress | None = None
    search: Search | None = None


@dataclass
class Outcome:
    """What a method returns to the shared finishing code: its details and notes."""

    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Runner = Callable[[Job[Any]], Outcome]


@dataclass(frozen=True)
class Method:
    """One compression method.

    ``runners`` maps the base format read (``"onnx"``, ``"tflite"``, :data:`TORCH`) to
    ``"module:function"`` (``".module"``: in this package); ``writes`` maps it to the format written
    (default ``"onnx"``). ``training``: the config field holding a ``TrainConfig`` (flat
    training keys such as ``epochs`` go there), None for a method that does not train.
    ``structured``: removes whole channels, so the result must be faster and its latency
    is always measured.
    """

    name: str
    config: type
    runners: Mapping[str, str]
    writes: Mapping[str, str] = field(default_factory=dict)
    training: str | None = None
    structured: bool = False
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.runners:
            raise ValueError(f"method {self.name!r} has no runner")
        bad = [spec for spec in self.runners.values() if ":" not in spec]
        if bad:
            raise ValueError(f"method {self.name!r}: runners are 'module:function', not {bad}")

    @property
    def reads(self) -> tuple[str, ...]:
        """The base formats it works on."""
        return tuple(self.runners)

    def input_format(self, base: Path, source: TorchModel | None = None) -> str:
        """What it reads here: :data:`TORCH` when it takes the torch model ``source`` itself,
        else ``base``'s format, which must be one it reads."""
        if source is not None and TORCH in self.runners:
            return TORCH
        fmt = ModelFile.of(base).format
        if fmt not in self.runners:
            readable = [get_format(f).title for f in self.reads if f != TORCH]
            torch = " (and torch models, exported to ONNX)" if "onnx" in self.reads else ""
            raise UsageError(
                f"{self.name} works on {' or '.join(readable)} models{torch}, "
                f"not {get_format(fmt).title}"
            )
        return fmt

    def output_format(self, fmt: str) -> str:
        """The format it writes when it reads ``fmt``."""
        return self.writes.get(fmt, "onnx")

    def suffix(self, fmt: str) -> str:
        """The file suffix of what it writes when it reads ``fmt``."""
        return get_format(self.output_format(fmt)).suffix

    def run(self, job: Job[Any]) -> Outcome:
        """Import the runner for what ``job`` gives it and run it."""
        return _import(self.runners[self.input_format(job.base, job.source)])(job)


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method) -> None:
    """Register ``method`` under its name; a name may be taken only once."""
    if method.name in _REGISTRY:
        raise ValueError(f"compression method {method.name!r} is already registered")
    _REGISTRY[method.name] = method


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UsageError(f"unknown compression method {name!r} (known: {known})") from None


def method_for(config: MethodConfig) -> Method:
    """The method ``config`` is the settings of."""
    method = get_method(config.method)
    if not isinstance(config, method.config):
        raise UsageError(
            f"{config.method} takes a {method.config.__name__}, not {type(config).__name__}"
        )
    return method


def _import(spec: str) -> Runner:
    module, _, name = spec.partition(":")
    runner: Runner = getattr(importlib.import_module(module, __package__), name)
    return runner
