from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.compress import Dataset, load_dataset
from edgeship.compress._data import HELD_MORE, HOLDOUT, check_dataset, eval_split
from edgeship.compress._evaluate import signature
from edgeship.core.errors import InputError
from tools.zoo.build import Manifest


def test_npz_loads_inputs_and_labels(test_npz: Path) -> None:
    data = load_dataset(test_npz)
    assert data is not None and data.names == ["input"] and data.labels is not None
    assert len(data) == len(data.labels)
    train, held = data.split(0.25)
    assert held is not None and len(train) + len(held) == len(data)


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"image": np.zeros((2, 1, 8, 8), np.float32)}, "missing input"),
        ({"input": np.zeros((2, 1, 8, 8), np.float64)}, "dtype float64, expected float32"),
        ({"input": np.zeros((2, 8, 8), np.float32)}, "shape"),
    ],
)
def test_data_that_does_not_fit_the_model(zoo: Manifest, feeds: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_dataset(signature(zoo.path("cnn.onnx")), Dataset(feeds))


def test_bad_labels_and_ragged_arrays() -> None:
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(InputError, match="labels must be"):
        Dataset({"x": x}, np.zeros(3, np.int64))
    with pytest.raises(InputError, match="labels must be"):
        Dataset({"x": x}, np.zeros(4, np.float32))
    with pytest.raises(InputError, match="first axis"):
        Dataset({"x": x, "y": np.zeros((5, 2), np.float32)})


def _rows(n: int) -> Dataset:
    return Dataset({"x": np.arange(n, dtype=np.float32)[:, None]}, np.arange(n) % 3)


@pytest.mark.parametrize(
    ("n", "reads", "held"),
    [
        (1257, None, round(1257 * HOLDOUT)),  # a method that reads all it gets: a fifth
        (1257, 256, HELD_MORE),  # a calibration of 256 rows: the rest, up to HELD_MORE
        (400, 256, 400 - 256),  # the rest, more than a fifth
        (300, 256, round(300 * HOLDOUT)),  # the rest would be fewer than a fifth
    ],
)
def test_a_method_reading_few_rows_leaves_the_rest_to_judge_it(
    n: int, reads: int | None, held: int
) -> None:
    split = eval_split(_rows(n), None, uses_data=True, reads=reads)
    assert split.train is not None and split.held is not None and not split.given
    assert len(split.held) == held and len(split.train) == n - held
    seen = set(split.train.feeds["x"][:, 0]) & set(split.held.feeds["x"][:, 0])
    assert not seen  # no row both calibrates and judges
    assert split.evaluation.startswith(f"{held} of {n} samples of --data held out at random")
