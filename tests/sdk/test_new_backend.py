"""A new backend is one adapter and one catalog entry: everything else reads the catalog.

The toy backend here runs ``.npy`` "models" (a matrix that inputs are multiplied by) with
a toy engine package written to a temporary directory. It is defined in this file alone;
the device probe, setup's package installation, the board profiles, the format's
default backend and the runtime's model loading all find it through its entry.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.core.errors import RemoteCommandError
from edgeship.targets.profiles import load_profile
from edgeship.targets.provision import _require_backends, install_each
from edgeship_runtime import formats, probe
from edgeship_runtime.backends import (
    BackendEntry,
    EngineBackend,
    Import,
    SessionOptions,
    catalog,
    default_backend,
    get_backend,
    register_backend,
)
from edgeship_runtime.backends.base import backends_for_format
from edgeship_runtime.backends.catalog import probe_modules
from edgeship_runtime.formats import Magic, ModelFormat, detect_format, register_format
from edgeship_runtime.model import load_model
from edgeship_runtime.signature import Signature, TensorSpec

ENGINE = """
import numpy

__version__ = "0.1"


def multiply(x, weights):
    return numpy.matmul(x, weights)
"""


class ToySession:
    def __init__(self, weights: np.ndarray, engine: Any) -> None:
        self._weights, self._engine = weights, engine
        rows, cols = weights.shape
        self.signature = Signature(
            (TensorSpec("x", (None, rows), "float32"),), (TensorSpec("y", (None, cols), "float32"),)
        )

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [self._engine.multiply(feeds["x"], self._weights)]

    def execution(self) -> dict[str, list[str]]:
        return {"providers": ["ToyExecutionProvider"]}

    def close(self) -> None:
        self._engine = None


class ToyBackend(EngineBackend):
    def load(self, path: str, options: SessionOptions) -> ToySession:
        return ToySession(np.load(path), self.engine())


TOY = BackendEntry(
    name="toy",
    adapter=f"{__name__}:ToyBackend",
    formats=("toy",),
    imports=(Import("toy_engine", "toy-engine"),),
    packages=("toy-engine", "toy-engine-lite"),
    providers=("ToyExecutionProvider",),
)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy format and backend registered (in private copies of both tables), its
    engine importable, and a model: a 3 x 2 matrix."""
    monkeypatch.setattr(catalog, "_REGISTRY", dict(catalog._REGISTRY))
    monkeypatch.setattr(formats, "_BY_NAME", dict(formats._BY_NAME))
    monkeypatch.setattr(formats, "_BY_SUFFIX", dict(formats._BY_SUFFIX))
    register_format(ModelFormat("toy", "Toy", (".npy",), magic=Magic(0, b"\x93NUMPY")))
    register_backend(TOY)
    engine = tmp_path / "site" / "toy_engine"
    engine.mkdir(parents=True)
    (engine / "__init__.py").write_text(ENGINE)
    monkeypatch.syspath_prepend(str(engine.parent))
    model = tmp_path / "scale.npy"
    np.save(model, np.arange(6, dtype=np.float32).reshape(3, 2))
    yield model
    sys.modules.pop("toy_engine", None)


def test_the_probe_reports_the_toy_engine(toy: Path) -> None:
    assert probe.backends(probe_modules())["toy_engine"] == {"available": True, "version": "0.1"}
    info = get_backend("toy").info()
    assert (info.available, info.version, info.module) == (True, "0.1", "toy_engine")
    assert info.providers == ("ToyExecutionProvider",) and info.formats == ("toy",)


def test_setup_installs_its_package_or_its_fallback(toy: Path) -> None:
    tried: list[str] = []

    def install(package: str) -> None:
        tried.append(package)
        if package == "toy-engine":
            raise RemoteCommandError("pi", "pip", 1, "ERROR: No matching distribution\n")

    assert install_each(["numpy", "toy-engine"], install) == (["numpy", "toy-engine-lite"], {})
    assert tried == ["numpy", "toy-engine", "toy-engine-lite"]
    seen = {"backends": {"numpy": {"available": True}, "toy_engine": {"available": True}}}
    _require_backends("pi", seen)  # the toy engine alone is a backend


def test_a_board_profile_may_name_it(toy: Path, tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(
        'schema = "edgeship.target-profile/1"\nname = "b"\narch = "aarch64"\n'
        '[runtime]\nbackends = ["toy"]\npip = ["numpy", "toy-engine"]\n'
    )
    assert load_profile(path).backends == ("toy",)


def test_its_format_maps_to_it_and_a_model_runs_through_it(toy: Path) -> None:
    assert detect_format(str(toy)) == "toy"
    assert default_backend("toy") == "toy" and backends_for_format("toy") == ["toy"]
    loaded = load_model(str(toy))
    assert (loaded.backend.name, loaded.backend.version) == ("toy", "0.1")
    assert loaded.backend.providers == ["ToyExecutionProvider"]
    x = np.ones((4, 3), np.float32)
    (y,) = loaded.run({"x": x})
    np.testing.assert_array_equal(y, x @ np.arange(6, dtype=np.float32).reshape(3, 2))
    loaded.close()
