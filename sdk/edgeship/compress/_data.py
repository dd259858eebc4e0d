"""Data for calibration, scoring, fine-tuning and evaluation: arrays by input name (+ labels).

A ``.npz`` holds the model's inputs under their names and optionally ``labels`` (N,)
integers. An input is samples-first (row *i* belongs to sample *i*), except the inputs a
model takes once per call (:func:`edgeship_runtime.inputs.per_call_inputs`: a scalar
such as a sample rate, or a first dim the model fixes at more than 1, such as a state
``[2, batch, 128]``): those are given whole and go unchanged into every call, and a data
set holding any runs one sample per call, so a state's batch dim is that of the value
given. Everything is checked against the model's signature before any work starts, so a
mismatch is one :class:`~edgeship.core.errors.InputError` naming the input.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeship.core.errors import InputError
from edgeship_runtime.inputs import (
    LABELS_KEY,
    input_mapping,
    load_arrays,
    per_call_inputs,
    validate_feeds,
)
from edgeship_runtime.signature import Signature, format_shape

__all__ = [
    "HELD_MORE",
    "HOLDOUT",
    "DataLike",
    "Dataset",
    "EvalSplit",
    "check_dataset",
    "eval_split",
    "load_dataset",
    "require",
]


@dataclass(frozen=True)
class Dataset:
    """Input arrays by name (first axis = samples, except the ``fixed`` ones: given whole
    to every call) and optional integer labels."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    fixed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        rows = {
            k: (a.shape[0] if a.ndim else 0) for k, a in self.feeds.items() if k not in self.fixed
        }
        if not rows:
            raise InputError("the data holds no samples-first input arrays")
        counts = list(rows.values())
        n = max(counts, key=counts.count)  # the most common; a tie: the first input's
        odd = next((k for k, c in rows.items() if c != n or c == 0), None)
        if odd is not None:
            shape = format_shape(self.feeds[odd].shape)
            raise InputError(
                f"input {odd!r} {shape}: its first axis is not the {n} samples of "
                f"{[k for k, c in rows.items() if c == n]} (give one row per sample), and "
                "the model does not take it once per call (a scalar, or a first dim it fixes)",
                input=odd,
                given=list(self.feeds[odd].shape),
            )
        if self.labels is not None:
            labels = self.labels
            if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(self):
                raise InputError(
                    f"labels must be ({len(self)},) integers; got {labels.dtype.name} "
                    f"{list(labels.shape)}"
                )

    def __len__(self) -> int:
        return int(next(a for k, a in self.feeds.items() if k not in self.fixed).shape[0])

    @property
    def names(self) -> list[str]:
        return list(self.feeds)

    def take(self, n: int) -> Dataset:
        """The first ``n`` samples (all when ``n`` >= len)."""
        return self.slice(0, min(n, len(self)))

    def slice(self, start: int, stop: int) -> Dataset:
        labels = None if self.labels is None else self.labels[start:stop]
        return Dataset(self._rows(slice(start, stop)), labels, self.fixed)

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset | None]:
        """(train, held-out) with ``fraction`` held out at random; (self, None) for 0."""
        n_val = round(len(self) * fraction)
        if n_val == 0 or n_val >= len(self):
            return self, None
        order = np.random.default_rng(seed).permutation(len(self))
        return self.pick(order[n_val:]), self.pick(order[:n_val])

    def pick(self, idx: np.ndarray) -> Dataset:
        labels = None if self.labels is None else self.labels[idx]
        return Dataset(self._rows(idx), labels, self.fixed)

    def unlabelled(self) -> Dataset:
        return Dataset(self.feeds, None, self.fixed)

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """Calls of ``size`` samples each (of one when some inputs are per call)."""
        size = 1 if self.fixed else size
        for start in range(0, len(self), size):
            yield self._rows(slice(start, start + size))

    def sample_shape(self, name: str) -> tuple[int, ...]:
        """The shape input ``name`` has in a call of one sample."""
        array = self.feeds[name]
        return tuple(array.shape) if name in self.fixed else (1, *array.shape[1:])

    def renamed(self, names: list[str]) -> Dataset:
        """The same arrays under a model's input names (:func:`input_mapping`)."""
        mapping = input_mapping(list(self.feeds), names)
        feeds = {mapping[k]: v for k, v in self.feeds.items()}
        return Dataset(feeds, self.labels, frozenset(mapping[k] for k in self.fixed))

    def _rows(self, idx: np.ndarray | builtins.slice) -> dict[str, np.ndarray]:
        return {k: v if k in self.fixed else v[idx] for k, v in self.feeds.items()}


DataLike = str | Path | Mapping[str, np.ndarray] | Dataset


def load_dataset(data: DataLike | None, model: object = None) -> Dataset | None:
    """A :class:`Dataset` from a path, a mapping (``labels`` key optional) or a Dataset.

    ``model``: the model file the data is for; the inputs it takes once per call (see the
    module) are kept whole. Without it (or for a torch model) every input is samples-first.
    """
    if data is None or isinstance(data, Dataset):
        return data
    arrays = load_arrays(str(data)) if isinstance(data, str | Path) else dict(data)
    if "" in arrays:
        raise InputError(f"{data}: pass an .npz with arrays under the input names")
    labels = arrays.pop(LABELS_KEY, None)
    feeds = {k: np.asarray(v) for k, v in arrays.items()}
    fixed = per_call_inputs(_signature(model), feeds) if isinstance(model, str | Path) else []
    return Dataset(feeds, labels, frozenset(fixed))


def _signature(model: str | Path) -> Signature:
    from edgeship.compress._evaluate import signature  # evaluate imports this module

    return signature(Path(model))


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
    inputs generated at the model's shape), and a phrase saying which (``evaluation``);
    ``given``: ``held`` is the user's ``--eval-data`` (not a part of ``--data``)."""

    train: Dataset | None
    held: Dataset | None
    evaluation: str
    given: bool = False


HELD_MORE = 1000
"""Up to how many samples are held out beyond ``HOLDOUT`` from a method that reads only a
few rows (a calibration): past that, more samples narrow an interval little."""


def eval_split(
    data: Dataset | None,
    eval_data: Dataset | None,
    uses_data: bool,
    fraction: float = HOLDOUT,
    reads: int | None = None,
) -> EvalSplit:
    """Never measure on what the method calibrated or trained on: ``eval_data`` when
    given, else a seeded random ``fraction`` of ``data`` held out from the method (all of
    it when the method uses none). ``reads``: the most rows the method reads (a
    calibration's; None: all it gets), so that every row past them up to
    :data:`HELD_MORE` is held out too, the more samples the narrower the intervals."""
    if eval_data is not None:
        return EvalSplit(data, eval_data, f"--eval-data ({len(eval_data)} samples)", given=True)
    if data is None:
        return EvalSplit(None, None, "")
    n = len(data)
    if not uses_data:
        return EvalSplit(data, data, f"all {n} samples of --data (the method used none of it)")
    if n < 2:
        unlabelled = data.unlabelled()
        why = "the one sample of --data, also used by the method (no accuracy: --eval-data)"
        return EvalSplit(data, unlabelled, why)
    held_n = min(n - 1, max(1, round(n * fraction)))
    share = f"{fraction:.0%}"
    if reads is not None and min(n - reads, HELD_MORE) > held_n:
        held_n = min(n - reads, HELD_MORE)
        share = f"all the method does not read, up to {HELD_MORE}"
    order = np.random.default_rng(0).permutation(n)
    train, held = data.pick(order[held_n:]), data.pick(order[:held_n])
    why = (
        f"{held_n} of {n} samples of --data held out at random ({share}), never used "
        f"to calibrate or train (--eval-data gives others)"
    )
    return EvalSplit(train, held, why)
