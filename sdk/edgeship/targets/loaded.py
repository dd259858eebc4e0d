"""A model loaded in a target's runtime: the handle every per-model operation goes through.

``target.load(model, config)`` stages the file, loads it and returns a :class:`Loaded`;
leaving its ``with`` block unloads it. It mirrors the runtime's per-handle operations
(``run``, ``profile``, ``profile_ops``; ``interleave`` takes several and lives on the
target).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeship.core.config import ParallelConfig, ProfileConfig
from edgeship.core.errors import EdgeshipError
from edgeship.targets import wire
from edgeship_runtime.opprofile import OpsPolicy
from edgeship_runtime.report import BackendUsage, ModelInfo, OpProfile, ProfileReport
from edgeship_runtime.signature import Signature

if TYPE_CHECKING:
    from edgeship.core.client import RuntimeClient
    from edgeship.targets.base import Target

__all__ = ["Loaded"]


class Loaded:
    """``model`` loaded on ``target`` with ``config``'s session; satisfies the ``Runner``
    protocol (``signature``, ``run``) that conversion and partitioning use."""

    def __init__(
        self,
        target: Target,
        model: Path,
        config: ProfileConfig,
        reply: wire.LoadReply,
        client: RuntimeClient,
    ) -> None:
        self.target = target
        self.path = Path(model)
        self.config = config
        self.reply = reply
        self._client = client
        self._unloaded = False

    @property
    def handle(self) -> str:
        return self.reply.handle

    @property
    def signature(self) -> Signature:
        return self.reply.signature

    @property
    def info(self) -> ModelInfo:
        """The model as the device sees it (its path there, sha256, format, size)."""
        return self.reply.model

    @property
    def backend(self) -> BackendUsage:
        return self.reply.backend

    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        shards: int | None = None,
        request_batch: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs by name; a data set larger than a fixed batch runs in chunks on the
        device. ``shards``/``request_batch``: over worker processes there."""
        request = wire.run(self.handle, inputs, shards=shards, request_batch=request_batch)
        return wire.outputs(self.target.request(request))

    def profile(
        self,
        config: ProfileConfig | None = None,
        *,
        inputs: Mapping[str, np.ndarray] | None = None,
        parallel: ParallelConfig | None = None,
    ) -> ProfileReport:
        """Time it as ``config`` (default: the config it was loaded with) says. ``inputs``
        (arrays) win over ``config.inputs``; ``parallel``: a stream over shards or
        pipeline stages, reported in the report's ``parallel`` section."""
        config = config or self.config
        extra = wire.parallel(parallel, self.target.stage_model) if parallel else None
        result = self.target.request(wire.profile(self.handle, config, inputs, extra))
        report = wire.profile_report(result)
        report.target = {**self.target.identity(), "model_path": report.model.path}
        report.model.path = str(self.path)  # the user's name for it; the device's in target
        return report

    def profile_ops(
        self,
        policy: OpsPolicy | None = None,
        config: ProfileConfig | None = None,
        *,
        inputs: Mapping[str, np.ndarray] | None = None,
    ) -> OpProfile:
        """Per-operator times from a profiling session of its own on the device (this
        model's session is not profiled), on ``config``'s inputs (default: the config it
        was loaded with; ``inputs`` win); see :class:`~edgeship_runtime.report.OpProfile`."""
        config = config or self.config
        request = wire.profile_ops(self.handle, policy or OpsPolicy(), config, inputs)
        return wire.op_profile(self.target.request(request))

    def unload(self) -> None:
        """Free it on the device, unless that runtime is gone (nothing left to free)."""
        if self._unloaded:
            return
        self._unloaded = True
        if self.target.is_current(self._client):
            self.target.request(wire.unload(self.handle))

    def __enter__(self) -> Loaded:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.unload()
            return
        with contextlib.suppress(EdgeshipError):  # the error in flight is the one to report
            self.unload()
