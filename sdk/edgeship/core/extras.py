"""Optional packages: which extra of ``pyproject.toml`` installs each, and the one error
a user sees when one is missing.

The host's heavy features live in extras, so that the README's first command installs
only what the demo needs (``edgeship[zoo]``). Code that needs an optional package either
imports it through :func:`import_optional` (a purpose and the module), or runs under
:func:`missing_extras` (the public entry points and the CLI), which turns a
``ModuleNotFoundError`` for one of these packages, raised anywhere below, into
:class:`MissingExtra`: one line naming the package and the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

from edgeship.core.errors import UsageError, said_by
from edgeship.core.quiet import quiet

__all__ = ["EXTRA_OF", "MissingExtra", "import_optional", "missing_extras"]

EXTRA_OF: dict[str, str] = {
    "torch": "torch",
    "onnx": "torch",
    "sklearn": "torch",
    "torch_pruning": "torch",
    "onnxconverter_common": "torch",
    "litert_torch": "tflite",
    "ai_edge_quantizer": "tflite",
    "onnx2torch": "convert",
    "onnxslim": "convert",
    "tf2onnx": "tflite-onnx",
    "tensorflow": "tflite-onnx",
    "scipy": "ab",
    "matplotlib": "ab",
    "ray": "ray",
}
"""Top-level module → the extra that installs it."""

_DISTRIBUTION = {
    "sklearn": "scikit-learn",
    "torch_pruning": "torch-pruning",
    "onnxconverter_common": "onnxconverter-common",
    "litert_torch": "litert-torch",
    "ai_edge_quantizer": "ai-edge-quantizer",
    "tensorflow": "tensorflow-cpu",
}
"""Where the name pip knows differs from the module's."""


class MissingExtra(UsageError):
    """An optional package is not installed (or does not import); ``extra`` installs it."""

    def __init__(self, module: str, extra: str, purpose: str = "", cause: str = "") -> None:
        package = _DISTRIBUTION.get(module, module)
        needs = f"{purpose} needs {package}" if purpose else f"{package} is not installed"
        because = f" ({cause})" if cause else ""
        super().__init__(
            f"{needs}: pip install 'edgeship[{extra}]'{because}", package=package, extra=extra
        )
        self.package = package
        self.extra = extra


def import_optional(name: str, purpose: str, extra: str | None = None) -> ModuleType:
    """Import ``name`` (quietly: TensorFlow and JAX talk on import) or raise MissingExtra.

    ``purpose`` is what needs it ("ONNX → TFLite"); ``extra`` overrides the one of
    :data:`EXTRA_OF` (the zoo asks for ``zoo``). Any failure to import counts: a package
    that is present but broken (a TensorFlow that cannot load) has the same remedy.
    """
    loaded = sys.modules.get(name)
    if loaded is not None and not _initializing(loaded):
        return loaded  # imported already: skip quiet(), whose fd swap other threads see
    root = name.partition(".")[0]
    # One import at a time: threads (a sweep's boards, an A/B's devices) reach the same
    # first import together, and one handed another's half-run module fails on a missing
    # name (scipy.stats without its `t`: a lost board's cells failed so).
    with _IMPORTING:
        try:
            with quiet():
                return importlib.import_module(name)
        except Exception as exc:
            raise MissingExtra(root, extra or EXTRA_OF[root], purpose, _cause(exc)) from exc


_IMPORTING = threading.RLock()


def _initializing(module: ModuleType) -> bool:
    """Whether ``module`` is in ``sys.modules`` while its code still runs (in another
    thread's import): importlib marks its spec so until the module is complete."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


@contextlib.contextmanager
def missing_extras(purpose: str = "") -> Iterator[None]:
    """Turn a missing optional package, raised anywhere inside, into MissingExtra.

    Also a decorator. Other ImportErrors (a user's own module) go through untouched.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        root = (exc.name or "").partition(".")[0]
        if root not in EXTRA_OF:
            raise
        raise MissingExtra(root, EXTRA_OF[root], purpose, _cause(exc)) from exc


def _cause(exc: Exception) -> str:
    said = said_by(exc)
    return said if isinstance(exc, ImportError) else f"{type(exc).__name__}: {said}"
