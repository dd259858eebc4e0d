"""The backend catalog: everything edgeship knows about a backend, in one entry.

An entry names a backend and says which model formats it runs, the execution providers
it knows (and which of them put the work on an accelerator), how its engine is imported
(modules tried in order, each with the distribution whose version it reports), where its
adapter lives (a :class:`~.base.Backend` built with the entry, imported on first use),
and the pip packages that bring it (the first preferred; the others are tried, in
order, where it has no wheel).

    backend      formats  engine modules, in order     pip packages, in order
    onnxruntime  onnx     onnxruntime                  onnxruntime
    tflite       tflite   ai_edge_litert.interpreter   ai-edge-litert
                          tflite_runtime.interpreter   tflite-runtime

Everything else reads it: the runtime's backend lookup and the format's default backend
(the first registered backend that runs it), the device probe (which modules to try:
:func:`probe_modules`), ``edgeship setup`` (base packages, fallbacks, which modules make a
backend) and the board profiles' checks. Adding a backend is an adapter module and one
:func:`register_backend` call. Registering imports nothing: neither the adapter nor its
engine, so the runtime starts on a board that has only one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from ..errors import UsageError
from ..formats import get_format

__all__ = [
    "BASE_IMPORTS",
    "BackendEntry",
    "Import",
    "accelerator_providers",
    "backend_modules",
    "backend_names",
    "default_backend",
    "get_entry",
    "package_fallbacks",
    "probe_modules",
    "readers",
    "register_backend",
]


@dataclass(frozen=True)
class Import:
    """One module to import, to know that a package works here.

    ``module`` is what must import: for LiteRT the interpreter itself, since a wheel built
    for a newer glibc imports its package and fails only there (tflite-runtime 2.12.0 on
    Debian bullseye armhf). ``distribution`` reports the version where the package has no
    ``__version__``. ``list_providers``: a function of the top-level package listing the
    providers this build has (ONNX Runtime's ``get_available_providers``).
    """

    module: str
    distribution: str
    list_providers: Optional[str] = None

    @property
    def package(self) -> str:
        """The top-level package: how the probe names the module."""
        return self.module.split(".")[0]

    def to_probe(self) -> Dict[str, Optional[str]]:
        """The form :mod:`..probe` reads (it is sent as JSON to a bare device Python)."""
        return {
            "module": self.module,
            "distribution": self.distribution,
            "providers": self.list_providers,
        }


BASE_IMPORTS = (Import("numpy", "numpy"), Import("psutil", "psutil"))
"""What the runtime uses whatever the backend: setup installs these first, and a device
without numpy cannot run models at all."""


@dataclass(frozen=True)
class BackendEntry:
    """One backend; see the module docstring. ``adapter`` is ``"module:attribute"``: a
    callable that takes this entry and returns the :class:`~.base.Backend`."""

    name: str
    adapter: str
    formats: Tuple[str, ...]
    imports: Tuple[Import, ...]
    packages: Tuple[str, ...]
    providers: Tuple[str, ...] = ()
    accelerators: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for label in ("formats", "imports", "packages"):
            if not getattr(self, label):
                raise ValueError(f"backend {self.name!r}: {label} must not be empty")
        if ":" not in self.adapter:
            raise ValueError(f"backend {self.name!r}: adapter must be 'module:attribute'")
        stray = [p for p in self.accelerators if p not in self.providers]
        if stray:
            raise ValueError(f"backend {self.name!r}: accelerator {stray[0]} is not a provider")


_REGISTRY: Dict[str, BackendEntry] = {}


def register_backend(entry: BackendEntry) -> None:
    """Add ``entry``; a name, a module or a package may belong to one backend only."""
    if entry.name in _REGISTRY:
        raise ValueError(f"backend {entry.name!r} is already registered")
    for other in _REGISTRY.values():
        shared = _owned(entry) & _owned(other)
        if shared:
            raise ValueError(f"backend {entry.name!r}: {min(shared)} belongs to {other.name!r}")
    _REGISTRY[entry.name] = entry


def _owned(entry: BackendEntry) -> Set[str]:
    """Its pip packages and the top-level packages of its engine modules."""
    return set(entry.packages) | {i.package for i in entry.imports}


def backend_names() -> List[str]:
    return list(_REGISTRY)


def get_entry(name: str) -> BackendEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UsageError(f"unknown backend {name!r} (known: {known})") from None


def readers(fmt: str) -> List[str]:
    """The backends that run ``fmt`` models, in registration order: the default first."""
    return [entry.name for entry in _REGISTRY.values() if fmt in entry.formats]


def default_backend(fmt: str) -> str:
    """The backend that runs ``fmt`` models unless another is asked for."""
    get_format(fmt)  # an unknown format is a UsageError naming the known ones
    found = readers(fmt)
    if not found:
        raise UsageError(f"no backend runs {fmt} models (known: {', '.join(_REGISTRY)})")
    return found[0]


def probe_modules() -> List[Dict[str, Optional[str]]]:
    """The modules the device probe tries: the runtime's own, then each backend's."""
    imports = BASE_IMPORTS + tuple(i for e in _REGISTRY.values() for i in e.imports)
    return [i.to_probe() for i in imports]


def backend_modules() -> List[str]:
    """The probe's names of the modules that bring a backend (any one is enough)."""
    return [i.package for entry in _REGISTRY.values() for i in entry.imports]


_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9._-]+")


def _requirement_name(requirement: str) -> str:
    """The distribution a pip requirement names: ``tflite-runtime!=2.12.0`` → ``tflite-runtime``."""
    found = _REQUIREMENT_NAME.match(requirement.strip())
    return found.group(0) if found else requirement


def package_fallbacks(requirement: str) -> Tuple[str, ...]:
    """The packages to try, in order, when ``requirement`` has no wheel for a device: those
    after it in its backend's list; none for a package no backend names."""
    name = _requirement_name(requirement)
    for entry in _REGISTRY.values():
        if name in entry.packages:
            return entry.packages[entry.packages.index(name) + 1 :]
    return ()


def accelerator_providers() -> List[str]:
    """Every backend's providers that put the work on an accelerator."""
    return [p for entry in _REGISTRY.values() for p in entry.accelerators]


_ORT_ACCELERATORS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
)
_ORT_OTHERS = (
    "OpenVINOExecutionProvider",
    "QNNExecutionProvider",
    "NnapiExecutionProvider",
    "XnnpackExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "AzureExecutionProvider",
    "CPUExecutionProvider",
)

register_backend(
    BackendEntry(
        name="onnxruntime",
        adapter="edgeship_runtime.backends.onnxruntime:OnnxRuntimeBackend",
        formats=("onnx",),
        imports=(Import("onnxruntime", "onnxruntime", "get_available_providers"),),
        packages=("onnxruntime",),
        providers=(*_ORT_ACCELERATORS, *_ORT_OTHERS),
        accelerators=_ORT_ACCELERATORS,
    )
)
register_backend(
    BackendEntry(
        name="tflite",
        adapter="edgeship_runtime.backends.tflite:TFLiteBackend",
        formats=("tflite",),
        imports=(
            Import("ai_edge_litert.interpreter", "ai-edge-litert"),
            Import("tflite_runtime.interpreter", "tflite-runtime"),
        ),
        packages=("ai-edge-litert", "tflite-runtime"),
        providers=("XNNPACK",),
    )
)
