"""``tools/gpu/prove_cuda.py`` without a GPU: its model runs, and its verdict names what
failed (the GPU run itself is the script's job on a machine that has one)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) omits the cwd
    sys.path.insert(0, str(REPO_ROOT))

from edgeship_runtime.model import load_model  # noqa: E402
from tools.gpu import prove_cuda  # noqa: E402


def row(load_ms: float, first_ms: float, not_run: list[str] | None = None) -> dict[str, Any]:
    ran = ["CUDAExecutionProvider", "CPUExecutionProvider"] if not_run else []
    return {
        "providers": ran,
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        "not_run": not_run or [],
    }


def test_the_conv_stack_runs_to_finite_outputs(tmp_path: Path) -> None:
    model = load_model(str(prove_cuda.conv_stack(tmp_path / "conv.onnx")))
    x = np.random.default_rng(1).standard_normal((1, 3, prove_cuda.SIDE, prove_cuda.SIDE))
    (y,) = model.run({"x": x.astype(np.float32)})
    assert y.shape == (1, prove_cuda.CHANNELS, 1, 1) and np.isfinite(y).all()


def test_a_cached_engine_that_loads_faster_passes() -> None:
    rows = {"trt-build": row(900.0, 50.0), "trt-cached": row(40.0, 2.0)}
    assert prove_cuda.verdict(rows) == []


def test_the_verdict_names_a_fallback_an_error_and_a_useless_cache() -> None:
    rows = {
        "cuda": {"error": "no CUDA"},
        "trt-build": row(100.0, 5.0, ["TensorrtExecutionProvider"]),
        "trt-cached": row(100.0, 5.0),
    }
    failures = prove_cuda.verdict(rows)
    assert failures[0] == "cuda: no CUDA"
    assert failures[1].startswith("trt-build: ran") and "TensorrtExecutionProvider" in failures[1]
    assert failures[2].startswith("trt-cached: load + first inference 105 ms, not below")
