"""INT8 calibration runs at the model's own batch (issue 24): a batch-1 export is fed one
sample per call, not the 32 a dynamic batch gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from edgeship.compress import CompressOptions, Dataset, GuardPolicy, QuantizeConfig, compress
from edgeship.compress.quantization import onnx_int8
from tests import models


def _rows(n: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(5).standard_normal((n, 64)).astype(np.float32)}


def test_calibration_batch_is_the_models_own(tmp_path: Path) -> None:
    data = Dataset(_rows(8))
    for batch, expected in ((1, (1, True)), ("batch", (onnx_int8.CALIBRATION_BATCH, False))):
        path = models.two_output_model(tmp_path / f"{batch}.onnx", features=64, batch=batch)
        assert onnx_int8.calibration_batch(onnx.load(str(path)), data) == expected


def test_int8_static_of_a_batch_1_model(tmp_path: Path) -> None:
    base = models.two_output_model(tmp_path / "b1.onnx", features=64, batch=1)
    config = QuantizeConfig("int8-static", fallback=False)
    keep = CompressOptions(guard=GuardPolicy(allow_degraded=True))  # the tiny mask may not hold
    report = compress(base, config, _rows(48), tmp_path / "b1.int8.onnx", keep).report
    assert report.details["quantized_nodes"] == ["head_a", "head_b"]
    assert report.interface == [] and report.fidelity is not None
    assert report.fidelity.samples == 10  # the held-out rows, one call each
