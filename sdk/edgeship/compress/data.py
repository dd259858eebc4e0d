"""Data for calibration, scoring, fine-tuning and evaluation: arrays by input name (+ labels).

A ``.npz`` holds the model's inputs under their names and optionally ``labels`` (N,)
integers. Everything is checked against the model's signature before any work starts, so
a mismatch is one :class:`~edgeship.errors.InputError` naming the input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeship_runtime.inputs import LABELS_KEY, load_arrays, validate_feeds
from edgeship_runtime.signature import Signature

from ..errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Input arrays by name (first axis = samples) and optional integer labels."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.feeds:
            raise InputError("the data holds no input arrays")
        counts = {name: (a.shape[0] if a.ndim else 0) for name, a in self.feeds.items()}
        if len(set(counts.values())) != 1 or 0 in counts.values():
            raise InputError(f"input arrays must share a non-empty first axis; got {counts}")
        if self.labels is not None:
            labels = self.labels
            if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(self):
                raise InputError(
                    f"labels must be ({len(self)},) integers; got {labels.dtype.name} "
                    f"{list(labels.shape)}"
                )

    def __len__(self) -> int:
        return int(next(iter(self.feeds.values())).shape[0])

    @property
    def names(self) -> list[str]:
        return list(self.feeds)

    def take(self, n: int) -> Dataset:
        """The first ``n`` samples (all when ``n`` >= len)."""
        return self.slice(0, min(n, len(self)))

    def slice(self, start: int, stop: int) -> Dataset:
        labels = None if self.labels is None else self.labels[start:stop]
        return Dataset({k: v[start:stop] for k, v in self.feeds.items()}, labels)

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset | None]:
        """(train, held-out) with ``fraction`` held out at random; (self, None) for 0."""
        n_val = round(len(self) * fraction)
        if n_val == 0 or n_val >= len(self):
            return self, None
        order = np.random.default_rng(seed).permutation(len(self))
        return self.pick(order[n_val:]), self.pick(order[:n_val])

    def pick(self, idx: np.ndarray) -> Dataset:
        labels = None if self.labels is None else self.labels[idx]
        return Dataset({k: v[idx] for k, v in self.feeds.items()}, labels)

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self), size):
            yield {k: v[start : start + size] for k, v in self.feeds.items()}

    def renamed(self, names: list[str]) -> Dataset:
        """The same arrays, in order, under the given input names (TFLite signatures)."""
        return Dataset(dict(zip(names, self.feeds.values(), strict=True)), self.labels)


DataLike = str | Path | Mapping[str, np.ndarray] | Dataset


def load_dataset(data: DataLike | None) -> Dataset | None:
    """A :class:`Dataset` from a path, a mapping (``labels`` key optional) or a Dataset."""
    if data is None or isinstance(data, Dataset):
        return data
    arrays = load_arrays(str(data)) if isinstance(data, str | Path) else dict(data)
    if "" in arrays:
        raise InputError(f"{data}: pass an .npz with arrays under the input names")
    labels = arrays.pop(LABELS_KEY, None)
    return Dataset({k: np.asarray(v) for k, v in arrays.items()}, labels)


def check_dataset(signature: Signature, data: Dataset, what: str = "data") -> None:
    """Names, dtypes and shapes must fit the model (batch dims may differ only if dynamic)."""
    try:
        validate_feeds(signature, data.take(1).feeds)
    except InputError as exc:
        raise InputError(f"{what} does not fit the model: {exc}", **exc.details) from exc


def require(data: Dataset | None, why: str) -> Dataset:
    if data is None:
        raise InputError(f"{why} needs data (--data D.npz with the model's inputs)")
    return data


HOLDOUT = 0.2
"""Share of ``--data`` held out to measure a method that calibrates or trains on data."""


@dataclass(frozen=True)
class EvalSplit:
    """What the method gets (``train``), what fidelity is measured on (``held``; None:
    inputs generated at the model's shape), and a phrase saying which (``evaluation``)."""

    train: Dataset | None
    held: Dataset | None
    evaluation: str


def eval_split(
    data: Dataset | None, eval_data: Dataset | None, uses_data: bool, fraction: float = HOLDOUT
) -> EvalSplit:
    """Never measure on what the method calibrated or trained on: ``eval_data`` when
    given, else a seeded random ``fraction`` of ``data`` held out from the method (all of
    it when the method uses none)."""
    if eval_data is not None:
        return EvalSplit(data, eval_data, f"--eval-data ({len(eval_data)} samples)")
    if data is None:
        return EvalSplit(None, None, "")
    n = len(data)
    if not uses_data:
        return EvalSplit(data, data, f"all {n} samples of --data (the method used none of it)")
    if n < 2:
        unlabelled = Dataset(data.feeds)
        why = "the one sample of --data, also used by the method (no accuracy: --eval-data)"
        return EvalSplit(data, unlabelled, why)
    held_n = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng(0).permutation(n)
    train, held = data.pick(order[held_n:]), data.pick(order[:held_n])
    why = (
        f"{held_n} of {n} samples of --data held out at random ({fraction:.0%}), never used "
        f"to calibrate or train (--eval-data gives others)"
    )
    return EvalSplit(train, held, why)
