"""The Python API; it mirrors the CLI (``edgeship profile`` ↔ :func:`profile`)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.inputs import parse_shape_overrides
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.report import ProfileReport

from .config import ProfileConfig
from .shard import ParallelConfig, profile_parallel
from .targets import Target, open_target

TargetLike = str | Target
PathLike = str | Path


def profile(
    model: PathLike,
    target: TargetLike = "local",
    *,
    backend: str | None = None,
    runs: int = 100,
    warmup: int = 10,
    min_seconds: float = 0.0,
    threads: int = 0,
    providers: Sequence[str] = (),
    inputs: PathLike | None = None,
    shapes: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
    seed: int = 0,
    samples: bool = False,
    shards: int | None = None,
    pipeline: PathLike | None = None,
) -> ProfileReport:
    """Profile ``model`` on ``target`` and return its typed report.

    ``shapes`` gives dynamic dims for generated inputs, as a mapping or as CLI-style
    ``"name=1,3,224,224"`` strings. Latencies in the report are milliseconds.
    ``shards`` (0: one per core) or ``pipeline`` (a directory from ``edgeship partition``)
    profile a stream of ``runs`` requests on worker processes instead, and fill the
    report's ``parallel`` section (see :mod:`edgeship.shard` for more settings).
    """
    config = ProfileConfig(
        policy=MeasurePolicy(warmup=warmup, runs=runs, min_seconds=min_seconds),
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
        with _target(target) as tgt:
            return profile_parallel(tgt, Path(model), config, parallel)
    with _target(target) as tgt:
        return tgt.profile(Path(model), config)


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
    config = ProfileConfig(session=SessionOptions(threads=threads), backend=backend)
    with _target(target) as tgt:
        return tgt.run(Path(model), inputs, config)


def _target(target: TargetLike) -> AbstractContextManager[Target]:
    """A target to use in a ``with``: a caller's open target is borrowed, not closed."""
    return contextlib.nullcontext(target) if isinstance(target, Target) else open_target(target)


def _shapes(
    shapes: Mapping[str, Sequence[int]] | Sequence[str] | None,
) -> dict[str, tuple[int, ...]]:
    if not shapes:
        return {}
    if isinstance(shapes, Mapping):
        return {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    return parse_shape_overrides(list(shapes))
