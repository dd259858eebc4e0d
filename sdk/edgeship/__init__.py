"""edgeship: compress, convert, deploy and profile ML models on edge boards.

The host SDK. The device side is :mod:`edgeship_runtime`, shipped as one zipapp. The main
commands of the ``edgeship`` CLI are functions here (see :mod:`edgeship.api`)::

    import edgeship

    report = edgeship.profile("cnn.onnx", target="pi")                 # ProfileReport
    result = edgeship.compress("cnn.onnx", edgeship.QuantizeConfig("int8-static"),
                               "calib.npz", "cnn-int8.onnx")           # CompressionResult
    edgeship.deploy("cnn-int8.onnx", "pi", name="detector")            # [Deployment]
    config = edgeship.ABConfig(gates=(edgeship.make_gate("min-speedup", 1.3),))
    edgeship.ab("cnn.onnx", ["cnn-int8.onnx"], "pi", config=config).passed

``edgeship.ab``, ``.compress``, ``.convert`` and ``.deploy`` are those functions; the
subpackages of the same names are reached with ``from edgeship.deploy import ...``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from edgeship_runtime import __version__

if TYPE_CHECKING:
    from edgeship.ab import ABConfig, ABReport, make_gate
    from edgeship.api import ab, compress, convert, deploy, info, profile, run
    from edgeship.compress import (
        ChainConfig,
        ChannelPruneConfig,
        CompressionResult,
        CompressOptions,
        DistillConfig,
        PruneConfig,
        QuantizeConfig,
    )
    from edgeship.convert import ConversionResult, ConvertConfig
    from edgeship.core.config import ConnectOptions, ProfileConfig, Timeouts
    from edgeship.core.errors import EdgeshipError
    from edgeship.deploy import Deployment
    from edgeship.targets import LocalTarget, Target, open_target
    from edgeship_runtime.report import ProfileReport

__all__ = [
    "ABConfig",
    "ABReport",
    "ChainConfig",
    "ChannelPruneConfig",
    "CompressOptions",
    "CompressionResult",
    "ConnectOptions",
    "ConversionResult",
    "ConvertConfig",
    "Deployment",
    "DistillConfig",
    "EdgeshipError",
    "LocalTarget",
    "ProfileConfig",
    "ProfileReport",
    "PruneConfig",
    "QuantizeConfig",
    "Target",
    "Timeouts",
    "__version__",
    "ab",
    "compress",
    "convert",
    "deploy",
    "info",
    "make_gate",
    "open_target",
    "profile",
    "run",
]

_FUNCTIONS = frozenset({"ab", "compress", "convert", "deploy"})

# Where each public name lives. They are imported on first use (PEP 562): the modules
# behind them load numpy, and edgeship.deploy paramiko, which `import edgeship`, the
# CLI's start and `local` work should not pay for.
_HOMES = {
    "edgeship.ab": ("ABConfig", "ABReport", "make_gate"),
    "edgeship.api": ("ab", "compress", "convert", "deploy", "info", "profile", "run"),
    "edgeship.compress": (
        "ChainConfig",
        "ChannelPruneConfig",
        "CompressionResult",
        "CompressOptions",
        "DistillConfig",
        "PruneConfig",
        "QuantizeConfig",
    ),
    "edgeship.convert": ("ConversionResult", "ConvertConfig"),
    "edgeship.core.config": ("ConnectOptions", "ProfileConfig", "Timeouts"),
    "edgeship.core.errors": ("EdgeshipError",),
    "edgeship.deploy": ("Deployment",),
    "edgeship.targets": ("LocalTarget", "Target", "open_target"),
    "edgeship_runtime.report": ("ProfileReport",),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # past _Package.__setattr__: the function, not the subpackage
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Importing a subpackage sets it as an attribute of its parent: ``edgeship.deploy``,
    first imported when an SSH target opens, would replace the function of that name."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return  # the subpackage stays in sys.modules, where imports find it
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
