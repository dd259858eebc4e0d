"""Things that run a model on named arrays: a model on a target, or (elsewhere) a torch module.

:class:`TargetRunner` loads the model once through the runtime's protocol and runs it as
often as asked; the runtime feeds a data set to a fixed-batch model (most ``.tflite``
files) in chunks of its batch and concatenates the outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from edgeship_runtime.ops import decode_tensors, encode_tensors
from edgeship_runtime.signature import Signature

from ..config import ProfileConfig
from ..errors import EdgeshipError
from ..targets import Target


class Runner(Protocol):
    """Runs a batch: arrays by input name in, arrays by output name out."""

    signature: Signature

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class TargetRunner:
    """A model loaded on a target's runtime for the life of a ``with`` block."""

    def __init__(self, target: Target, path: Path, config: ProfileConfig | None = None) -> None:
        self.target = target
        self.path = Path(path)
        self.config = config or ProfileConfig()
        self._handle: str | None = None
        self.signature = Signature((), ())

    def __enter__(self) -> TargetRunner:
        args = self.config.load_args(self.target.stage_model(self.path))
        loaded = self.target.call("load", args)
        self._handle = str(loaded["handle"])
        self.signature = Signature.from_dict(loaded["signature"])
        return self

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._handle is None:
            raise RuntimeError("TargetRunner.run outside its with-block")
        result = self.target.call("run", {"handle": self._handle, "inputs": encode_tensors(feeds)})
        return dict(decode_tensors(result["outputs"]))

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            with contextlib.suppress(EdgeshipError):
                self.target.call("unload", {"handle": self._handle})
            self._handle = None
