"""Things that run a model on named arrays: a model on a target, or (elsewhere) a torch module.

A model on a target is :meth:`Target.load`'s :class:`~edgeship.targets.Loaded`: loaded once,
run as often as asked; the runtime feeds a data set to a fixed-batch model (most
``.tflite`` files) in chunks of its batch and concatenates the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from edgeship_runtime.signature import Signature

__all__ = ["Runner"]


class Runner(Protocol):
    """Runs a batch: arrays by input name in, arrays by output name out."""

    @property
    def signature(self) -> Signature: ...

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...
