"""Attention heads as a prunable group of a torch model (``nn.MultiheadAttention``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgeship.compress import ChannelPruneConfig, Dataset, TrainConfig, prune_channels
from edgeship.compress.prune.channel_groups import find_groups
from edgeship.compress.prune.heads import HeadAttention, prune_heads
from edgeship.compress.train.torch_model import TorchModel, export_onnx
from tests.sdk.compress import transformer
from tests.sdk.compress.conftest import accuracy
from tools.zoo.build import Manifest

B, L, S, E, H = 3, 5, 7, 16, 4


def _inputs(batch_first: bool) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(B, n, E, generator=gen) for n in (L, S, S))
    return (q, k, v) if batch_first else (q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1))


MASKS: dict[str, dict[str, Any]] = {
    "none": {},
    "padding": {"key_padding_mask": torch.arange(S).expand(B, S) >= S - 2},
    "per-head": {"attn_mask": torch.randn(B * H, L, S, generator=torch.Generator().manual_seed(2))},
    "causal": {"attn_mask": torch.ones(L, S, dtype=torch.bool).triu(1), "is_causal": True},
    "per-head weights": {"average_attn_weights": False},
}


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask", list(MASKS))
def test_head_attention_computes_what_multihead_attention_does(
    batch_first: bool, mask: str
) -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, batch_first=batch_first).eval()
    swapped = HeadAttention(mha).eval()
    with torch.no_grad():
        (want, want_w), (got, got_w) = (
            m(*_inputs(batch_first), **MASKS[mask]) for m in (mha, swapped)
        )
    assert torch.allclose(got, want, atol=1e-5)
    assert want_w is not None and got_w is not None and torch.allclose(got_w, want_w, atol=1e-6)


@pytest.mark.parametrize("mask", ["none", "per-head"])
def test_removing_heads_equals_silencing_them(mask: str) -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, batch_first=True).eval()
    swapped = HeadAttention(mha)
    swapped.keep(torch.tensor([1, 3]))
    d = E // H
    with torch.no_grad():
        for h in (0, 2):  # a head whose output the projection ignores contributes nothing
            mha.out_proj.weight[:, h * d : (h + 1) * d] = 0
        want, _ = mha(*_inputs(True), **MASKS[mask])
        got, _ = swapped(*_inputs(True), **MASKS[mask])
    assert swapped.num_heads == 2 and swapped.q_proj_weight.shape == (2 * d, E)
    assert swapped.out_proj.weight.shape == (E, 2 * d)
    assert torch.allclose(got, want, atol=1e-5)


class _Blocks(nn.Module):
    def __init__(self, heads: int = H, bias_kv: bool = False) -> None:
        super().__init__()
        self.a = nn.MultiheadAttention(E, heads, batch_first=True)
        self.b = nn.MultiheadAttention(E, H, batch_first=True, add_bias_kv=bias_kv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.a(x, x, x, need_weights=False)[0]
        return x + self.b(x, x, x, need_weights=False)[0]


def _data() -> Dataset:
    return Dataset({"x": np.random.default_rng(0).standard_normal((8, L, E)).astype(np.float32)})


@pytest.mark.parametrize("how", ["l1", "l2", "activation", "perturbation"])
def test_the_weakest_heads_go_and_never_all(how: str) -> None:
    torch.manual_seed(0)
    model = _Blocks().eval()
    d = E // H
    with torch.no_grad():  # head 2 of layer a barely contributes: the first to go
        model.a.in_proj_weight[2 * d : 3 * d] *= 0.01
        model.a.in_proj_weight[2 * E + 2 * d : 2 * E + 3 * d] *= 0.01
        model.a.out_proj.weight[:, 2 * d : 3 * d] *= 0.01
    done, skipped = prune_heads(model, 0.25, how, _data())
    assert done["a"] == {"before": H, "after": H - 1, "removed": [2]} and not skipped
    model = _Blocks().eval()
    done, _ = prune_heads(model, 0.99, how, _data())
    assert done["a"]["after"] == done["b"]["after"] == 1
    assert model(torch.from_numpy(_data().feeds["x"])).shape == (8, L, E)


def test_layers_whose_heads_cannot_go_are_named() -> None:
    model = _Blocks(heads=1, bias_kv=True).eval()
    done, skipped = prune_heads(model, 0.5, "l1", _data())
    assert not done
    assert skipped == {
        "a": "one attention head (it is never removed)",
        "b": "attention with add_bias_kv/add_zero_attn is not pruned",
    }


@pytest.fixture(scope="module")
def digits_ids(zoo: Manifest, train_data: Dataset, test_data: Dataset) -> tuple[Dataset, Dataset]:
    return transformer.tokens(train_data), transformer.tokens(test_data)


@pytest.fixture(scope="module")
def trained(digits_ids: tuple[Dataset, Dataset], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return transformer.train(digits_ids[0], tmp_path_factory.mktemp("encoder") / "encoder.pt")


def _signature(path: Path) -> list[tuple[str, str, list[object]]]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [(i.name, i.type, list(i.shape)) for i in sess.get_inputs()]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch_pruning") is None, reason="no torch-pruning")
def test_transformer_encoder_loses_heads_and_stays_accurate(
    trained: Path, digits_ids: tuple[Dataset, Dataset], tmp_path: Path
) -> None:
    train, test = digits_ids
    source = TorchModel("tests.sdk.compress.transformer:encoder", trained)
    config = ChannelPruneConfig(0.5, samples=128, fine_tune=TrainConfig(epochs=2, lr=1e-3))
    result = prune_channels(source, config, train, tmp_path / "slim.onnx")
    rec = result.report
    for i in range(2):
        heads = rec.details["heads"][f"encoder.layers.{i}.self_attn"]
        assert heads["before"] == transformer.HEADS and heads["after"] == transformer.HEADS // 2
        assert len(heads["removed"]) == transformer.HEADS // 2
        assert rec.details["layers"][f"encoder.layers.{i}.linear1"] == {"before": 64, "after": 32}
    assert rec.details["layers"]["head"] == {"before": 10, "after": 10}  # the output layer
    assert rec.model.parameters < 0.8 * rec.base.parameters
    assert rec.model.size_bytes < 0.8 * rec.base.size_bytes
    assert _signature(result.path) == _signature(Path(rec.base.path))
    base = accuracy(Path(rec.base.path), test)
    assert accuracy(result.path, test) >= base - 0.1


def test_onnx_attention_is_refused_naming_the_heads(tmp_path: Path) -> None:
    ids = {"ids": np.zeros((2, transformer.LENGTH), np.int64)}
    path = export_onnx(transformer.encoder(), ids, tmp_path / "encoder.onnx", ["ids"])
    blocked = {g.layers[0]: g.blocked or "" for g in find_groups(onnx.load(str(path)))}
    projections = [why for layer, why in blocked.items() if "self_attn/MatMul" in layer]
    assert projections and all("projects attention heads" in why for why in projections)
