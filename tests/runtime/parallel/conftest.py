"""Models for the parallel tests, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.parallel import helpers


@pytest.fixture(scope="session")
def chain_onnx(model_dir: Path) -> Path:
    return helpers.chain_model(model_dir / "chain.onnx")


@pytest.fixture(scope="session")
def chain_stages(chain_onnx: Path, model_dir: Path) -> Path:
    """``chain.onnx`` cut in two, with a manifest."""
    return helpers.cut_model(chain_onnx, model_dir / "chain-2", helpers.CUTS_2)


@pytest.fixture(scope="session")
def chain_stages_3(chain_onnx: Path, model_dir: Path) -> Path:
    return helpers.cut_model(chain_onnx, model_dir / "chain-3", helpers.CUTS_3)
