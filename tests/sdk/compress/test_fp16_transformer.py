"""FP16 of transformer encoders: a ``Transpose`` that moves the batch axis and feeds a
``MatMul`` stays float32, else ONNX Runtime (1.32, CPU) segfaults creating the session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeship.compress import CompressOptions, GuardPolicy, QuantizeConfig, compress
from edgeship.compress.quantization.onnx_fp16 import batch_transposes
from tests.models import save_graph
from tests.sdk.compress import transformer
from tests.sdk.compress.conftest import HAS_FP16, ort_outputs

pytestmark = pytest.mark.skipif(not HAS_FP16, reason="onnxconverter-common not installed")

SEQ, WIDTH, OUT = 5, 8, 4


def _transpose_matmul(path: Path, perm: list[int], reader: str = "MatMul") -> Path:
    """``x [batch, ., .]`` → Transpose ``t`` (``perm``) to ``[., ., WIDTH]`` → ``reader``
    → ``+ b``."""
    rng = np.random.default_rng(3)
    width = OUT if reader == "MatMul" else WIDTH
    w = numpy_helper.from_array(rng.standard_normal((WIDTH, OUT)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(width).astype(np.float32), "b")
    inputs = ["t", "w"] if reader == "MatMul" else ["t"]
    shape: list[int | str] = ["batch", SEQ, SEQ]
    shape[perm[-1]] = WIDTH  # what the MatMul contracts
    out = [shape[axis] for axis in perm[:-1]] + [width]
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["x"], ["t"], name="t", perm=perm),
            helper.make_node(reader, inputs, ["m"], name="mm"),
            helper.make_node("Add", ["m", "b"], ["y"], name="add"),
        ],
        "transpose_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        initializer=[w, b] if reader == "MatMul" else [b],
    )
    return save_graph(graph, path)


@pytest.mark.parametrize(
    ("perm", "reader", "kept"),
    [
        ([1, 0, 2], "MatMul", ["t"]),  # FusedMatMul's transBatch layout
        ([0, 2, 1], "MatMul", []),  # the last two axes: fused safely
        ([1, 0, 2], "Relu", []),  # no MatMul reads it
    ],
)
def test_batch_transposes_into_a_matmul_are_found(
    tmp_path: Path, perm: list[int], reader: str, kept: list[str]
) -> None:
    model = onnx.load(str(_transpose_matmul(tmp_path / "t.onnx", perm, reader)))
    assert batch_transposes(model) == kept


@pytest.mark.parametrize("exclude", [(), ("mm",)])  # a float32 MatMul: a Cast before it
def test_fp16_of_a_batch_transpose_into_a_matmul_loads(
    tmp_path: Path, exclude: tuple[str, ...]
) -> None:
    base = _transpose_matmul(tmp_path / "t.onnx", [1, 0, 2])
    x = np.random.default_rng(4).standard_normal((6, SEQ, WIDTH)).astype(np.float32)
    feeds = {"x": x}
    config = QuantizeConfig("fp16", exclude_nodes=exclude)
    keep = CompressOptions(guard=GuardPolicy(allow_degraded=True))  # a few weights: fp16's
    rec = compress(base, config, feeds, tmp_path / "half.onnx", keep).report  # casts outweigh them
    assert "t" in rec.details["float_nodes"]
    assert rec.fidelity is not None and rec.fidelity.cosine is not None
    assert rec.fidelity.cosine > 0.999


def test_fp16_transformer_encoder_loads_and_stays_close(tmp_path: Path) -> None:
    """Two batch-first ``nn.TransformerEncoderLayer`` s over int64 ids (the corpus case
    that crashed ONNX Runtime at load)."""
    import torch

    from edgeship.compress.training.torch_model import export_onnx

    torch.manual_seed(0)
    ids = np.random.default_rng(5).integers(0, transformer.LEVELS, (32, transformer.LENGTH))
    feeds = {"ids": ids.astype(np.int64)}
    base = export_onnx(transformer.encoder(), feeds, tmp_path / "encoder.onnx", ["ids"])
    result = compress(base, QuantizeConfig("fp16"), feeds, tmp_path / "encoder.fp16.onnx")
    rec = result.report
    assert rec.fidelity is not None and rec.fidelity.cosine is not None
    assert rec.fidelity.cosine > 0.999 and rec.fidelity.top1_agreement == 1.0
    assert rec.model.size_bytes < 0.6 * rec.base.size_bytes
    kept = [n for n in rec.details["float_nodes"] if n.endswith("self_attn/Transpose")]
    assert len(kept) == 2  # one per layer
    out = ort_outputs(result.path, {"ids": feeds["ids"][:4]})  # plain ORT, all optimisations
    assert out.dtype == np.float32 and np.isfinite(out).all()
