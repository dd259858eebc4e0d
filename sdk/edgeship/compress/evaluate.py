"""Running produced models: batch predictions for fidelity, the one run on a target that
every produced model must pass, and interleaved batch-1 latency.

Predictions run in this process through the edgeship runtime's own backends (the same
loading code the device uses); the figures are :mod:`edgeship.fidelity`'s. Verification
and latency go through a :class:`Target` the caller opened once for the whole run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.model import load_model
from edgeship_runtime.signature import Signature

from .. import fidelity as figures
from ..config import ConnectOptions, ProfileConfig
from ..errors import (
    AuthenticationError,
    ConnectError,
    EdgeshipError,
    HostKeyError,
    VerificationError,
)
from ..fidelity import Fidelity
from ..targets import Target, open_target
from .data import Dataset
from .report import Latency

UNREACHABLE = (ConnectError, AuthenticationError, HostKeyError)
"""Errors that say nothing about the model: they propagate as they are."""

EVAL_BATCH = 256


def signature(path: Path) -> Signature:
    loaded = load_model(str(path), options=SessionOptions(threads=1))
    try:
        return loaded.session.signature
    finally:
        loaded.close()


def predict(path: Path, data: Dataset, threads: int = 2) -> np.ndarray:
    """The first output of ``path`` on all of ``data``, batched (per sample when the model's
    batch dim is fixed, as in TFLite)."""
    loaded = load_model(str(path), options=SessionOptions(threads=threads))
    try:
        sig = loaded.session.signature
        fixed = all(isinstance(s.shape[0], int) and s.shape[0] > 0 for s in sig.inputs if s.shape)
        size = int(sig.inputs[0].shape[0]) if fixed and sig.inputs[0].shape else EVAL_BATCH  # type: ignore[arg-type]
        feeds = (
            data.renamed([s.name for s in sig.inputs])
            if data.names != [s.name for s in sig.inputs]
            else data
        )
        io = integer_io(path, sig)
        outs = [io.dequantize(loaded.run(io.quantize(batch))[0]) for batch in feeds.batches(size)]
    finally:
        loaded.close()
    return np.concatenate(outs).astype(np.float32)


class IntegerIO:
    """Float data in and out of a fully integer TFLite model, with its own scales."""

    def __init__(self, inputs: dict[str, tuple[float, int, str]], output: tuple[float, int]):
        self.inputs, self.output = inputs, output

    def quantize(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, value in feeds.items():
            if name in self.inputs and value.dtype.kind == "f":
                scale, zero, dtype = self.inputs[name]
                info = np.iinfo(dtype)
                q = np.round(value / scale) + zero
                value = np.clip(q, info.min, info.max).astype(dtype)
            out[name] = value
        return out

    def dequantize(self, value: np.ndarray) -> np.ndarray:
        scale, zero = self.output
        if value.dtype.kind in "iu" and scale:
            return (value.astype(np.float32) - zero) * scale
        return value


def integer_io(path: Path, sig: Signature) -> IntegerIO:
    """Scales of integer inputs/outputs (TFLite full INT8); identity for everything else."""
    if not any(s.dtype in ("int8", "uint8", "int16") for s in (*sig.inputs, *sig.outputs)):
        return IntegerIO({}, (0.0, 0))
    if path.suffix != ".tflite":
        return IntegerIO({}, (0.0, 0))
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    ins = {}
    for spec, detail in zip(sig.inputs, interp.get_input_details(), strict=True):
        scale, zero = detail["quantization"]
        if scale:
            ins[spec.name] = (float(scale), int(zero), np.dtype(detail["dtype"]).name)
    scale, zero = interp.get_output_details()[0]["quantization"]
    return IntegerIO(ins, (float(scale), int(zero)))


def accuracy(logits: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy (see :func:`edgeship.fidelity.accuracy`); None without labels."""
    return figures.accuracy(logits, labels)


def fidelity(base: np.ndarray, new: np.ndarray, labels: np.ndarray | None) -> Fidelity:
    """``new`` against ``base``, one flattened row per sample."""
    return figures.compare(figures.rows(base), figures.rows(new), labels)


def verify(path: Path, sample: dict[str, np.ndarray] | None, target: Target) -> str:
    """Load and run ``path`` once on ``target``; its name, or :class:`VerificationError`.

    ``sample`` (one sample per input) is renamed to the model's input names by position;
    without it the runtime generates inputs from the signature. A target that cannot be
    reached at all raises its own error: that says nothing about the model.
    """
    try:
        if sample is None:
            policy = MeasurePolicy(warmup=0, runs=1)
            target.profile(path, ProfileConfig(policy=policy, session=SessionOptions(threads=1)))
        else:
            sig = signature(path)
            names = [s.name for s in sig.inputs]
            feeds = integer_io(path, sig).quantize(dict(zip(names, sample.values(), strict=True)))
            target.run(path, feeds, ProfileConfig(session=SessionOptions(threads=1)))
    except UNREACHABLE:
        raise
    except EdgeshipError as exc:
        raise VerificationError(
            f"{path}: the produced model did not run on {target.name}: {exc}",
            path=str(path),
            target=target.name,
        ) from exc
    return target.name


def latency(
    base: Path,
    model: Path,
    target: Target | str = "local",
    threads: int = 1,
    rounds: int = 3,
    runs: int = 200,
) -> Latency:
    """Median of per-round p50s (batch 1) of ``base`` and ``model`` measured interleaved
    (:func:`edgeship.optimize.bench.interleaved`), after one discarded round (a runtime's
    first sessions run slower: cold caches, clocks). A target spec is opened for the call."""
    from ..optimize.bench import interleaved, median_p50_ms  # optimize imports convert

    config = ProfileConfig(
        policy=MeasurePolicy(warmup=max(20, runs // 5), runs=runs),
        session=SessionOptions(threads=threads),
    )
    with opened(target) as tgt:
        base_reports, model_reports = interleaved(
            tgt.profile, [(base, config), (model, config)], rounds, discard=1
        )
        name = tgt.name
    return Latency(
        target=name,
        threads=threads,
        base_p50_ms=median_p50_ms(base_reports),
        model_p50_ms=median_p50_ms(model_reports),
        rounds=rounds,
    )


@contextlib.contextmanager
def opened(target: Target | str, connect: ConnectOptions | None = None) -> Iterator[Target]:
    """``target`` itself (left open: its owner closes it), or the one target a spec names,
    opened with ``connect`` for the ``with`` body and closed after it."""
    if isinstance(target, Target):
        yield target
        return
    with open_target(target, connect) as named:
        yield named


def first_sample(data: Dataset | None) -> dict[str, np.ndarray] | None:
    return None if data is None else data.take(1).feeds


def input_names(path: Path) -> Sequence[str]:
    return [s.name for s in signature(path).inputs]
