"""The route registry: which conversions exist, lazily imported converters, duplicates."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeship.convert import ConvertConfig, Route, get_route, register_route, registered_routes
from edgeship.convert import _routes as registry
from edgeship.convert._result import Converted
from edgeship.convert._routes import Job
from edgeship_runtime.errors import UsageError
from edgeship_runtime.signature import Signature


def fake_converter(job: Job) -> Converted:
    job.out.write_text(f"from {job.file().name}")
    return Converted("fake 1.0", notes=["copied"])


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield


def test_the_built_in_routes() -> None:
    assert [r.name for r in registered_routes()] == [
        "pytorch->onnx",
        "pytorch->tflite",
        "onnx->tflite",
        "tflite->onnx",
    ]
    assert get_route("onnx", "tflite").converter == "._onnx_tflite:run"


def test_an_unknown_route_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"no conversion from tflite to pytorch \(routes: pyt"):
        get_route("tflite", "pytorch")
    with pytest.raises(UsageError, match="already onnx: nothing to convert"):
        get_route("onnx", "onnx")


def test_a_route_is_registered_once(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="onnx->tflite is already registered"):
        register_route(Route("onnx", "tflite", "._onnx_tflite:run"))
    with pytest.raises(ValueError, match="module:function"):
        Route("onnx", "x", "nothing")


def test_a_registered_route_runs_its_converter(scratch_registry: None, tmp_path: Path) -> None:
    register_route(Route("tflite", "tflite-q", f"{__name__}:fake_converter"))
    source = tmp_path / "m.tflite"
    source.write_text("model")
    config = ConvertConfig(source=str(source), output=tmp_path / "o.onnx")
    job = Job(source, Signature((), ()), tmp_path / "o.bin", config)
    converted = get_route("tflite", "tflite-q").run(job)
    assert converted.converter == "fake 1.0" and (tmp_path / "o.bin").read_text() == "from m.tflite"


def test_routes_import_no_converter() -> None:
    code = (
        "import sys, edgeship.convert; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'edgeship.convert._onnx_tflite') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
