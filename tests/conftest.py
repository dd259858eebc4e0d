"""Session-wide fixtures: tiny models built once per session, a private bundle cache, and
the browser that opens the reports.

Builders live in :mod:`tests.models`; this file only caches their output per session.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import models
from tests.browser import find_chromium

HAS_LITERT_TORCH = importlib.util.find_spec("litert_torch") is not None

# torch (and numpy's BLAS) on one thread, here and in the CLI subprocesses the tests start.
# The tests' models are small and the test process shares the cores with the runtime it
# starts: OpenMP's second thread spin-waits, and a busy 2-core machine made the training
# tests 4-7x slower in wall time and 5x in CPU time (docs/benchmarks.md, "Test tiers").
# Set before anything imports torch; a value the caller set is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Runtime zipapps go to a per-session directory (also for CLI subprocesses)."""
    path = tmp_path_factory.mktemp("edgeship-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGESHIP_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, for the tests that open a report in a real browser."""
    return find_chromium()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def add_onnx(model_dir: Path) -> Path:
    return models.add_model(model_dir / "add.onnx")


@pytest.fixture(scope="session")
def multi_input_onnx(model_dir: Path) -> Path:
    return models.multi_input_model(model_dir / "multi_input.onnx")


@pytest.fixture(scope="session")
def state_onnx(model_dir: Path) -> Path:
    return models.state_model(model_dir / "state.onnx")


@pytest.fixture(scope="session")
def failing_onnx(model_dir: Path) -> Path:
    return models.failing_model(model_dir / "failing.onnx")


@pytest.fixture(scope="session")
def truncated_onnx(model_dir: Path, multi_input_onnx: Path) -> Path:
    return models.truncated_copy(multi_input_onnx, model_dir / "truncated.onnx")


@pytest.fixture(scope="session")
def stopwords_onnx(model_dir: Path) -> Path:
    return models.stopwords_model(model_dir / "stopwords.onnx")


@pytest.fixture(scope="session")
def text_onnx(model_dir: Path) -> Path:
    return models.text_file(model_dir / "notes.onnx")


@pytest.fixture(scope="session")
def empty_onnx(model_dir: Path) -> Path:
    return models.empty_file(model_dir / "empty.onnx")


@pytest.fixture(scope="session")
def tiny_tflite(model_dir: Path) -> Path:
    """float32 ``x [-1, 4]`` + int64 ``ids [-1, 5]`` → ``[-1, 3]``, converted by litert_torch."""
    if not HAS_LITERT_TORCH:
        pytest.skip("litert_torch is not installed: cannot build the .tflite fixture")
    return models.tflite_model(model_dir / "tiny.tflite")
