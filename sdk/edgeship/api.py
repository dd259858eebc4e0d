"""The Python API; it mirrors the CLI, which is a thin layer over it.

    edgeship profile MODEL --target T      profile(model, target)      -> ProfileReport
    edgeship run MODEL --inputs X          run(model, inputs, target)  -> outputs by name
    edgeship info TARGET                   info(target)                -> dict
    edgeship compress MODEL --method M     compress(model, config, data, out, options)
                                                                       -> CompressionResult
    edgeship convert SRC OUT               convert(config, target)     -> ConversionResult
    edgeship deploy MODEL... --target T    deploy(models, target)      -> [Deployment]
    edgeship ab BASE VARIANT... --target T ab(base, variants, target)  -> ABReport

A target is a name (``"local"``, a device or group of the targets file, an ssh alias,
``user@host[:port]``) or an open :class:`~edgeship.targets.Target`, which is borrowed and
left open. Sizes under ``*_mb`` fields are MiB (2**20 bytes); latencies are milliseconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.core.config import (
    DEFAULT_HEALTH,
    ConnectOptions,
    HealthPolicy,
    ParallelConfig,
    ProfileConfig,
    Signing,
)
from edgeship.core.errors import BackendUnavailable, EdgeshipError, UsageError
from edgeship.targets import Target, open_target
from edgeship.targets.capabilities import SETUP, deployer
from edgeship.targets.fleet import DEFAULT_FORKS

if TYPE_CHECKING:
    # Loaded where used, so that a command pays only for its own: `edgeship deploy`
    # imports neither A/B nor compression nor conversion, nor numpy and the measuring
    # code (tools/bench/startup.py; tests/sdk/test_imports.py).
    import numpy as np

    from edgeship.ab.result import ABReport
    from edgeship.ab.runner import ABConfig, ABProgress
    from edgeship.convert import ConversionResult, ConvertConfig
    from edgeship.deploy import Deployment  # loads paramiko: not at `import edgeship`
    from edgeship_runtime.report import ProfileReport

TargetLike = str | Target
PathLike = str | Path

__all__ = [
    "ab",
    "compress",  # noqa: F822 (a module __getattr__ imports it on first use)
    "convert",
    "deploy",
    "info",
    "profile",
    "run",
    "setup_hint",
]


def profile(
    model: PathLike,
    target: TargetLike = "local",
    *,
    backend: str | None = None,
    runs: int = 100,
    warmup: int = 10,
    min_seconds: float | None = None,
    threads: int = 0,
    providers: Sequence[str] = (),
    inputs: PathLike | None = None,
    shapes: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
    seed: int = 0,
    samples: bool = False,
    shards: int | None = None,
    pipeline: PathLike | None = None,
    ops: bool = False,
    cooldown_c: float | None = None,
    steady: bool = True,
) -> ProfileReport:
    """Profile ``model`` on ``target`` and return its typed report.

    Each figure rests on at least ``min_seconds`` of timed runs (None: the runtime's
    default, 1 s) and at
    least ``runs`` runs. ``shapes`` gives dynamic dims for generated inputs, as a mapping
    or as CLI-style ``"name=1,3,224,224"`` strings. Latencies in the report are milliseconds.
    ``shards`` (0: one per core) or ``pipeline`` (a directory from ``edgeship partition``)
    profile a stream of ``runs`` requests on worker processes instead, and fill the
    report's ``parallel`` section (see :mod:`edgeship.targets.shard` for more settings).
    ``ops``: also time each operator (the report's ``ops``); ``cooldown_c``: first wait
    (up to 300 s) until the device's hottest thermal zone is below it, in °C; ``steady``:
    ``warmup`` is a minimum and the warm-up goes on until the median settles. The report's
    ``validity`` says whether its figures can be trusted, ``energy`` what power sensors
    measured.
    """
    from edgeship.targets.cooldown import CooldownPolicy
    from edgeship.targets.shard import profile_parallel
    from edgeship_runtime.backends import SessionOptions
    from edgeship_runtime.guards import with_cooldown
    from edgeship_runtime.measure import DEFAULT_MIN_SECONDS, MeasurePolicy
    from edgeship_runtime.opprofile import OpsPolicy

    budget = DEFAULT_MIN_SECONDS if min_seconds is None else min_seconds
    config = ProfileConfig(
        policy=MeasurePolicy(warmup=warmup, runs=runs, min_seconds=budget, steady=steady),
        session=SessionOptions(threads=threads, providers=tuple(providers)),
        backend=backend,
        inputs=Path(inputs) if inputs is not None else None,
        shapes=_shapes(shapes),
        seed=seed,
        samples=samples,
    )
    if shards is not None or pipeline is not None:
        parallel = ParallelConfig(
            shards=shards, pipeline=Path(pipeline) if pipeline is not None else None
        )
        with _target(target) as tgt, setup_hint(tgt):
            return profile_parallel(tgt, Path(model), config, parallel)
    with _target(target) as tgt, setup_hint(tgt):
        waited = tgt.cooldown(CooldownPolicy(cooldown_c)) if cooldown_c is not None else None
        report = tgt.profile(Path(model), config, ops=OpsPolicy(runs, warmup) if ops else None)
        if waited is not None and report.validity is not None:
            with_cooldown(report.validity, waited)
        return report


def info(target: TargetLike = "local") -> dict[str, Any]:
    """The runtime's view of the device: backends and versions, environment."""
    with _target(target) as tgt:
        return tgt.info()


def run(
    model: PathLike,
    inputs: Mapping[str, np.ndarray],
    target: TargetLike = "local",
    *,
    backend: str | None = None,
    threads: int = 0,
) -> dict[str, np.ndarray]:
    """Run ``model`` once on ``inputs`` (arrays by input name); outputs by name."""
    from edgeship_runtime.backends import SessionOptions

    config = ProfileConfig(session=SessionOptions(threads=threads), backend=backend)
    with _target(target) as tgt, setup_hint(tgt):
        return tgt.run(Path(model), inputs, config)


def convert(config: ConvertConfig, target: TargetLike = "local") -> ConversionResult:
    """Convert ``config.source`` to ``config.output``, verified on ``target``: the result
    is run beside its source on the same inputs (max |Δ|, cosine, top-1) and published
    only when it matches. See :class:`~edgeship.convert.ConvertConfig` for the routes."""
    from edgeship.convert import convert as convert_on

    with _target(target) as tgt:
        return convert_on(config, tgt)


def deploy(
    models: PathLike | Sequence[PathLike],
    target: TargetLike,
    *,
    name: str | None = None,
    options: ConnectOptions | None = None,
    health: HealthPolicy | None = DEFAULT_HEALTH,
    signing: Signing | None = None,
) -> list[Deployment]:
    """Upload ``models`` to ``target`` (one device) and activate each as the next version
    of its name, atomically and hash-verified on the device; one
    :class:`~edgeship.deploy.Deployment` per model, in order.

    ``name``: the deployment name (default: the file's stem), for one model only; two
    models that would share a name are refused (the second would silently become a newer
    version of the first). ``options``: how to reach a target given by name
    (``keep_versions``: older versions kept, default 3); an open target keeps its own.
    ``health``: each new version loads and runs on the device before it is activated
    (see :mod:`edgeship.deploy.health`; None: skip the check); one that fails is recorded
    as failed, the active version stays, and :class:`~edgeship.deploy.health.
    HealthCheckFailed` is raised. ``signing``: sign each model (see
    :mod:`edgeship.deploy.signing`); a device that trusts a key refuses any other.
    """
    paths = [Path(models)] if isinstance(models, str | Path) else [Path(m) for m in models]
    check_deploy_names(paths, name)
    with _target(target, options) as tgt:
        device = deployer(tgt)
        return [device.deploy(path, name, health, signing) for path in paths]


def check_deploy_names(models: Sequence[Path], name: str | None) -> None:
    """Refuse a deployment whose models would overwrite each other's name."""
    if not models:
        raise UsageError("deploy: no model given")
    if name is not None and len(models) > 1:
        raise UsageError("--name works with one model; deploy several without it")
    stems: dict[str, Path] = {}
    for model in models:
        other = stems.setdefault(model.stem, model)
        if other != model:
            raise UsageError(
                f"{other} and {model} would both be deployed as {model.stem!r}, the second "
                "as a newer version of the first; deploy them one at a time with --name"
            )


def ab(
    base: PathLike,
    variants: Sequence[PathLike],
    target: TargetLike | Sequence[Target] = "local",
    *,
    config: ABConfig | None = None,
    options: ConnectOptions | None = None,
    forks: int = DEFAULT_FORKS,
    progress: ABProgress | None = None,
) -> ABReport:
    """A/B ``variants`` against ``base`` on ``target`` (a device, a group, several open
    targets): interleaved timing, statistics, memory, quality and the gates of ``config``.

    ``report.passed`` says whether every gate passed on every device. With several
    devices, one that fails is recorded in ``report.failures`` and the others go on; on
    one device its error is raised. ``forks``: devices measured at once (the rest queue).
    ``progress`` hears of each device's steps (:class:`~edgeship.ab.runner.ABStep`).
    """
    from edgeship.ab.runner import run_ab

    return run_ab(base, list(variants), target, config, options, forks=forks, progress=progress)


@contextlib.contextmanager
def setup_hint(target: Target) -> Iterator[None]:
    """On a device edgeship can set up, "no installed backend" means: set it up first —
    unless its board profile has no backend for that format at all (32-bit ARM and ONNX)."""
    try:
        yield
    except BackendUnavailable as exc:
        if SETUP not in target.capabilities:
            raise
        advice = _backend_advice(target, exc.details.get("format"))
        raise BackendUnavailable(f"{exc.message}; {advice}", **exc.details) from exc


def _backend_advice(target: Target, fmt: object) -> str:
    from edgeship_runtime.backends.base import backends_for_format

    try:
        board = target.board_profile()
    except EdgeshipError:  # the device cannot say: the usual advice
        board = None
    readers = set(backends_for_format(fmt)) if isinstance(fmt, str) else set()
    if board is not None and readers and not readers & set(board.backends):
        return (
            f"the board profile {board.name} has no backend for {fmt} models (it installs "
            f"{', '.join(board.backends)}): convert the model to a format it runs"
        )
    return (
        f"run `edgeship setup {target.name}` first "
        "(or pass --python, a Python on the device that has it)"
    )


def _target(
    target: TargetLike, options: ConnectOptions | None = None
) -> AbstractContextManager[Target]:
    """A target to use in a ``with``: a caller's open target is borrowed, not closed."""
    if isinstance(target, Target):
        return contextlib.nullcontext(target)
    return open_target(target, options)


def _shapes(
    shapes: Mapping[str, Sequence[int]] | Sequence[str] | None,
) -> dict[str, tuple[int, ...]]:
    if not shapes:
        return {}
    if isinstance(shapes, Mapping):
        return {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    from edgeship_runtime.inputs import parse_shape_overrides

    return parse_shape_overrides(list(shapes))


def __getattr__(name: str) -> Any:
    """``compress`` is :func:`edgeship.compress.compress`, imported when first asked for."""
    if name == "compress":
        from edgeship.compress import compress

        return compress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
