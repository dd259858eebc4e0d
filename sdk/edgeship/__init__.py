"""edgeship: compress, convert, deploy and profile ML models on edge boards.

The host SDK. The device side is :mod:`edgeship_runtime`, shipped as one zipapp.
"""

from __future__ import annotations

from edgeship_runtime import __version__
from edgeship_runtime.report import ProfileReport

from .api import info, profile, run
from .config import ProfileConfig, Timeouts
from .errors import EdgeshipError
from .targets import LocalTarget, Target, open_target

__all__ = [
    "EdgeshipError",
    "LocalTarget",
    "ProfileConfig",
    "ProfileReport",
    "Target",
    "Timeouts",
    "__version__",
    "info",
    "open_target",
    "profile",
    "run",
]
