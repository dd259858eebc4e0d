"""Fixtures for compression tests: the real zoo (built once, cached in <repo>/.zoo), data
splits as :class:`Dataset` s, and tiny pattern graphs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.compress import Dataset, Latency
from edgeship.compress import _evaluate as evaluate
from edgeship.core.client import Pipe
from edgeship.targets import LocalTarget
from tests.sdk.compress import models
from tools.zoo.build import Manifest, build_zoo

HAS_AEQ = importlib.util.find_spec("ai_edge_quantizer") is not None
HAS_FP16 = importlib.util.find_spec("onnxconverter_common") is not None


@pytest.fixture(scope="session")
def zoo() -> Manifest:
    return build_zoo()


@pytest.fixture(autouse=True)
def _latency_rounds_by_runs(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compress times each model for at least ``latency_seconds`` (0.2 s) in every latency
    round; the tests here check what the rounds decide, so their rounds are counted in runs
    only (about 25 s off the fast tier). A test marked ``latency_budget`` keeps the budget."""
    if request.node.get_closest_marker("latency_budget"):
        return
    real = evaluate.latency

    def by_runs(*args: Any, min_seconds: float = 0.0, **kwargs: Any) -> Latency:
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "latency", by_runs)


@pytest.fixture(scope="session")
def test_npz(zoo: Manifest) -> Path:
    return zoo.path("digits_test.npz")


@pytest.fixture(scope="session")
def train_npz(zoo: Manifest) -> Path:
    return zoo.path("digits_train.npz")


@pytest.fixture(scope="session")
def test_data(test_npz: Path) -> Dataset:
    with np.load(test_npz) as npz:
        return Dataset({"input": npz["input"]}, npz["labels"])


@pytest.fixture(scope="session")
def train_data(train_npz: Path) -> Dataset:
    with np.load(train_npz) as npz:
        return Dataset({"input": npz["input"]}, npz["labels"])


@pytest.fixture(scope="session")
def small_train(train_data: Dataset) -> Dataset:
    """512 training samples: enough for a few quick fine-tuning epochs."""
    return train_data.take(512)


@pytest.fixture(scope="session")
def patterns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("patterns")
    return {
        "residual": models.residual(root / "residual.onnx"),
        "concat": models.concat(root / "concat.onnx"),
        "only_output": models.only_output_layer(root / "only_output.onnx"),
    }


def ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Plain onnxruntime, independent of edgeship: what a user's deployment would load."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, feeds)[0])


def accuracy(path: Path, data: Dataset) -> float:
    return float((ort_outputs(path, data.feeds).argmax(1) == data.labels).mean())


class CountingTarget(LocalTarget):
    """The local target, counting the runtime processes it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    def start_pipe(self) -> Pipe:
        self.starts += 1
        return super().start_pipe()
