"""The ONNX Runtime session settings tune chooses among: validated, passed, honoured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.core.config import ProfileConfig
from edgeship.targets import wire
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.errors import UsageError
from edgeship_runtime.model import load_model
from edgeship_runtime.ops import Runtime
from tests.sdk.convert import graphs


def test_validation() -> None:
    options = SessionOptions(threads=2, execution_mode="parallel", graph_optimization="basic")
    assert (options.execution_mode, options.graph_optimization) == ("parallel", "basic")
    with pytest.raises(UsageError, match="execution mode must be one of sequential, parallel"):
        SessionOptions(execution_mode="async")
    with pytest.raises(UsageError, match="graph optimization must be one of disable, basic"):
        SessionOptions(graph_optimization="max")


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_onnxruntime_honours_them(tmp_path: Path, level: str, mode: str) -> None:
    path = graphs.foldable_model(tmp_path / "f.onnx")
    model = load_model(
        str(path),
        "onnxruntime",
        SessionOptions(threads=1, execution_mode=mode, graph_optimization=level),
    )
    session = model.session._session  # type: ignore[attr-defined]
    options = session.get_session_options()
    assert (
        options.graph_optimization_level.name
        == {
            "disable": "ORT_DISABLE_ALL",
            "basic": "ORT_ENABLE_BASIC",
            "extended": "ORT_ENABLE_EXTENDED",
            "all": "ORT_ENABLE_ALL",
        }[level]
    )
    assert options.execution_mode.name == f"ORT_{mode.upper()}"
    x = np.ones((2, graphs.WIDTH), np.float32)
    assert model.run({"x": x})[0].shape == (2, graphs.WIDTH)


def test_they_cross_the_protocol(tmp_path: Path) -> None:
    path = graphs.foldable_model(tmp_path / "f.onnx")
    config = ProfileConfig(
        session=SessionOptions(execution_mode="parallel", graph_optimization="disable")
    )
    args = wire.load(str(path), config).args
    assert (args["execution_mode"], args["graph_optimization"]) == ("parallel", "disable")
    runtime = Runtime()
    try:
        handle = runtime.load(args)["handle"]
        session = runtime._models[handle].session._session  # type: ignore[attr-defined]
        assert session.get_session_options().execution_mode.name == "ORT_PARALLEL"
    finally:
        runtime.close()
