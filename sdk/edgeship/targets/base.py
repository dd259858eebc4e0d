"""The ``Target`` API: one interface whether the runtime runs here or on a board.

A target knows how to start the runtime (:meth:`Target.start_pipe`) and how to make a
host model file visible to it (:meth:`Target.stage_model`). Everything else — the
handshake, loading, profiling, running — is shared, so ``local`` and SSH behave alike.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.ops import decode_tensors, encode_tensors
from edgeship_runtime.report import ProfileReport

from ..client import Pipe, RuntimeClient
from ..config import ProfileConfig, Timeouts
from ..errors import ConnectError, RemoteTimeout, RuntimeCrashed
from ..profiles import BoardProfile

_T = TypeVar("_T", bound="Target")


class Target(abc.ABC):
    """A device that runs the edgeship runtime. Use as a context manager."""

    kind: str = ""

    def __init__(self, name: str, timeouts: Timeouts | None = None) -> None:
        self.name = name
        self.timeouts = timeouts or Timeouts()
        self._client: RuntimeClient | None = None

    @abc.abstractmethod
    def start_pipe(self) -> Pipe:
        """Start ``edgeship-runtime.pyz serve`` on the device and return its streams."""

    @abc.abstractmethod
    def stage_model(self, path: Path) -> str:
        """Make a host model file available on the device; return the device's path."""

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}

    def client(self) -> RuntimeClient:
        """The runtime session, started on first use and kept for later requests."""
        if self._client is None:
            client = RuntimeClient(self.start_pipe(), self.name, self.timeouts.command)
            try:
                client.start(self.timeouts.startup)
            except BaseException:
                client.pipe.kill()
                raise
            self._client = client
        return self._client

    def info(self) -> dict[str, Any]:
        """Runtime version, backends with versions, and the device's environment."""
        result: dict[str, Any] = self.call("info", {})
        result["target"] = self.identity()
        return result

    def call(self, op: str, args: dict[str, Any]) -> Any:
        """One request to the runtime. After a crash, a timeout or a lost connection the
        runtime is gone: forget it, so the next request starts a fresh one instead of
        writing to the dead."""
        client = self.client()
        try:
            return client.call(op, args)
        except (RuntimeCrashed, RemoteTimeout, ConnectError):
            if self._client is client:
                self._client = None
            raise

    @contextlib.contextmanager
    def loaded(self, model: Path, config: ProfileConfig) -> Iterator[str]:
        """The device handle of ``model``, loaded for the ``with`` body and unloaded after
        (unless the runtime died meanwhile: then there is nothing left to unload)."""
        device_path = self.stage_model(Path(model))  # a missing file fails before any start
        client = self.client()
        handle = str(self.call("load", config.load_args(device_path))["handle"])
        try:
            yield handle
        finally:
            if self._client is client:
                self.call("unload", {"handle": handle})

    def settings_for(self, model: Path, config: ProfileConfig) -> ProfileConfig:
        """``config`` as given when it names a session; else the session ``edgeship tune``
        stored for this model on this target; else the board profile's defaults."""
        from ..optimize.settings import with_stored_settings  # optimize imports targets

        config = with_stored_settings(self, model, config)
        board = self.board_profile()
        if board is None or config.session != SessionOptions():
            return config
        session = SessionOptions(threads=board.threads, providers=board.onnxruntime_providers)
        return dataclasses.replace(config, session=session)

    def board_profile(self) -> BoardProfile | None:
        """The board profile whose defaults (threads, providers) apply here, if any."""
        return None

    def profile(self, model: Path, config: ProfileConfig | None = None) -> ProfileReport:
        config = self.settings_for(Path(model), config or ProfileConfig())
        with self.loaded(model, config) as handle:
            data = self.call("profile", config.profile_args(handle))
        report = ProfileReport.from_dict(data)
        report.target = {**self.identity(), "model_path": report.model.path}
        report.model.path = str(model)  # the user's name for it; the device's is in target
        return report

    def run(
        self,
        model: Path,
        inputs: Mapping[str, np.ndarray],
        config: ProfileConfig | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model once on ``inputs``; the outputs by name."""
        config = self.settings_for(Path(model), config or ProfileConfig())
        with self.loaded(model, config) as handle:
            result = self.call("run", {"handle": handle, "inputs": encode_tensors(inputs)})
        return decode_tensors(result["outputs"])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
