"""The ``Target`` API: one interface whether the runtime runs here or on a board.

A target knows how to start the runtime (:meth:`Target.start_pipe`), how to make a host
model file visible to it (:meth:`Target.stage_model`) and where tuned settings live
(:meth:`Target.settings_store`). Everything else — the handshake, loading, profiling,
running, interleaving — is shared, so every kind of target behaves alike. Requests are
built and replies read in :mod:`.wire`; a model on the device is a :class:`.Loaded`.

What a kind of target can do beyond running models (deploy, probe, setup) it declares in
``capabilities``; see :mod:`.capabilities`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from edgeship.core.client import Pipe, RuntimeClient
from edgeship.core.config import ParallelConfig, ProfileConfig, Timeouts, fit_threads
from edgeship.core.errors import (
    ConnectError,
    RemoteTimeout,
    RuntimeCrashed,
    TargetError,
    UsageError,
)

# What loads and measures models (the requests and replies, numpy, the runtime's measuring
# and report modules, tuned settings and board defaults) is imported in the methods that
# do: a deploy, which only connects and moves files, loads none of it
# (tests/sdk/test_imports.py).
if TYPE_CHECKING:
    import numpy as np

    from edgeship.targets import wire
    from edgeship.targets.cooldown import CooldownPolicy, CooldownProgress
    from edgeship.targets.loaded import Loaded
    from edgeship.targets.profiles import BoardProfile
    from edgeship.targets.settings import SettingsStore
    from edgeship_runtime.measure import InterleavePolicy
    from edgeship_runtime.opprofile import OpsPolicy
    from edgeship_runtime.report import Cooldown, DeviceState, ProfileReport

__all__ = ["Target"]

_T = TypeVar("_T", bound="Target")


class Target(abc.ABC):
    """A device that runs the edgeship runtime. Use as a context manager."""

    kind: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    """Operations beyond running models that this kind supports (see :mod:`.capabilities`)."""

    def __init__(self, name: str, timeouts: Timeouts | None = None) -> None:
        self.name = name
        self.timeouts = timeouts or Timeouts()
        self._client: RuntimeClient | None = None
        self._staged: dict[tuple[str, int, int], str] = {}
        self.runtime_starts = 0
        """How many runtime processes this target started (each costs a Python start)."""

    @abc.abstractmethod
    def start_pipe(self) -> Pipe:
        """Start ``edgeship-runtime.pyz serve`` on the device and return its streams."""

    @abc.abstractmethod
    def stage_model(self, path: Path) -> str:
        """Make a host model file available on the device; return the device's path."""

    def settings_store(self) -> SettingsStore:
        """Where settings tuned on this target are kept (default: the host's cache)."""
        from edgeship.targets.settings import LocalSettingsStore

        return LocalSettingsStore()

    def board_profile(self) -> BoardProfile | None:
        """The board profile whose defaults (threads, providers) apply here, if any."""
        return None

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}

    # -------------------------------------------------------------------- the session

    def client(self) -> RuntimeClient:
        """The runtime session, started on first use and kept for later requests."""
        if self._client is None:
            t = self.timeouts
            client = RuntimeClient(self.start_pipe(), self.name, t.command, t.unresponsive)
            self.runtime_starts += 1
            try:
                client.start(self.timeouts.startup)
            except BaseException:
                client.pipe.kill()
                raise
            self._client = client
        return self._client

    def is_current(self, client: RuntimeClient) -> bool:
        """Whether ``client`` is still this target's live session."""
        return self._client is client

    def request(self, request: wire.Request) -> Any:
        """One request to the runtime. After a crash, a timeout or a lost connection the
        runtime is gone: forget it, so the next request starts a fresh one instead of
        writing to the dead."""
        client = self.client()
        try:
            return client.call(request.op, request.args)
        except (RuntimeCrashed, RemoteTimeout, ConnectError):
            if self._client is client:
                self._client = None
            raise

    def restart(self) -> None:
        """End the runtime session; the next request starts a fresh process (e.g. so one
        model's memory high-water mark cannot hide in another's)."""
        self._staged.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    # -------------------------------------------------------------------- operations

    def info(self) -> dict[str, Any]:
        """Runtime version, backends with versions, and the device's environment."""
        from edgeship.targets import wire

        result: dict[str, Any] = self.request(wire.info())
        result["target"] = self.identity()
        return result

    def load(self, model: Path | str, config: ProfileConfig | None = None) -> Loaded:
        """Stage ``model`` and load it with ``config``'s session and backend, as given
        (no stored or board defaults: see :meth:`settings_for`). Use the result in a
        ``with`` block, which unloads it."""
        model = Path(model)
        config = config or ProfileConfig()
        device_path = self._stage(model)  # a missing file fails before any start
        return self.load_staged(device_path, config, self.staged_digests(device_path), model)

    def load_staged(
        self,
        device_path: str,
        config: ProfileConfig,
        digests: tuple[str, dict[str, str]] | None = None,
        model: Path | None = None,
    ) -> Loaded:
        """Load a file already on the device (``digests``: the sha256 it and its companion
        files must have, see :meth:`staged_digests`); ``model`` is the user's name for it
        (default: the device path)."""
        from edgeship.targets import wire
        from edgeship.targets.loaded import Loaded

        client = self.client()
        request = wire.load(device_path, config, *(digests or (None, None)))
        reply = wire.LoadReply.parse(self.request(request))
        return Loaded(self, model or Path(device_path), config, reply, client)

    def staged_digests(self, device_path: str) -> tuple[str, dict[str, str]] | None:
        """The sha256 the file this target staged at ``device_path`` must still have on
        the device, and its companion files' by name (None: nothing to check, as for a
        file on this machine); the runtime refuses to load a file that changed."""
        return None

    def _stage(self, model: Path) -> str:
        """:meth:`stage_model`, once per file version for the life of the session: an A/B
        loads each model once per session, and staging hashes the file."""
        try:
            seen = model.stat()
        except OSError:
            return self.stage_model(model)  # its own error for a missing file
        key = (str(model.resolve()), seen.st_size, seen.st_mtime_ns)
        if key not in self._staged:
            self._staged[key] = self.stage_model(model)
        return self._staged[key]

    def interleave(
        self,
        models: Sequence[Loaded],
        policy: InterleavePolicy,
        feeds: Sequence[Mapping[str, np.ndarray]] | None = None,
        shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> wire.Interleaved:
        """Time loaded models interleaved in randomized blocks, in one process (the A/B
        design); ``feeds``: one set of inputs per model, else generated on the device."""
        from edgeship.targets import wire

        handles = [m.handle for m in models]
        if any(m.target is not self for m in models):
            raise UsageError("interleave: every model must be loaded on this target")
        result = self.request(wire.interleave(handles, policy, feeds, shapes))
        if policy.min_seconds and "min_seconds" not in (result.get("policy") or {}):
            raise TargetError(
                f"the runtime on {self.name} predates sessions sized by time (it ignored "
                "min_seconds): deploy a matching runtime (edgeship setup)",
                target=self.name,
            )
        return wire.Interleaved.parse(handles, result)

    def settings_for(self, model: Path, config: ProfileConfig) -> ProfileConfig:
        """``config`` as given when it names a session; else the session ``edgeship tune``
        stored for this model on this target; else the board profile's defaults. Pinned to
        CPUs (``--cpus``): at most one thread per CPU (:func:`~.core.config.fit_threads`)."""
        from edgeship.targets.settings import apply_stored
        from edgeship_runtime.backends import SessionOptions

        chosen = config.session.threads > 0
        config = apply_stored(self.settings_store(), model, config)
        board = self.board_profile()
        if board is not None and not config.session.chooses_session():
            session = SessionOptions(threads=board.threads, providers=board.onnxruntime_providers)
            config = dataclasses.replace(config, session=config.session.refining(session))
        pinned = fit_threads(config.session, config.policy.cpus, chosen)
        return dataclasses.replace(config, session=pinned)

    def profile(
        self,
        model: Path | str,
        config: ProfileConfig | None = None,
        parallel: ParallelConfig | None = None,
        *,
        ops: OpsPolicy | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> ProfileReport:
        """Load, profile, unload, with the stored or board session when none is given.
        ``ops``: also time each operator, in a profiling session of its own after the
        timed runs (the report's ``ops``). ``progress`` is called with ``"timing"`` once
        the model is loaded (its upload done) and with ``"ops"`` before the operators."""
        config = self.settings_for(Path(model), config or ProfileConfig())
        with self.load(model, config) as loaded:
            if progress is not None:
                progress("timing")
            report = loaded.profile(parallel=parallel)
            if ops is not None:
                if progress is not None:
                    progress("ops")
                report.ops = loaded.profile_ops(ops)
            return report

    def conditions(self) -> DeviceState:
        """The device's heat, CPU clocks and throttling state now."""
        from edgeship.targets import wire

        return wire.device_state(self.request(wire.conditions()))

    def cooldown(
        self, policy: CooldownPolicy, progress: CooldownProgress | None = None
    ) -> Cooldown:
        """Wait until the device is below ``policy.below_c`` °C (or the timeout passes);
        ``progress`` is called after each reading that is still too hot."""
        from edgeship.targets.cooldown import wait_cool

        return wait_cool(self, policy, progress)

    def run(
        self,
        model: Path | str,
        inputs: Mapping[str, np.ndarray],
        config: ProfileConfig | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model once on ``inputs``; the outputs by name."""
        config = self.settings_for(Path(model), config or ProfileConfig())
        with self.load(model, config) as loaded:
            return loaded.run(inputs)

    def close(self) -> None:
        self.restart()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
