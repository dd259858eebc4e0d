"""PyTorch sources: factories, checkpoints, names; every failure a ConversionError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeship.convert._torch_source import (
    TorchRunner,
    build_module,
    flatten_outputs,
    forward_input_names,
    identifier,
    load_factory,
    load_weights,
    torch_source,
)
from edgeship.core.errors import ConversionError


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, image: torch.Tensor, extra: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.lin(image + extra)
        return {"scores": h, "probs": h.softmax(-1)}


def test_factory_errors_are_conversion_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ConversionError, match="expected module:factory"):
        load_factory("no_colon")
    with pytest.raises(ConversionError, match="No module named 'no_such_pkg'"):
        load_factory("no_such_pkg.models:cnn")
    with pytest.raises(ConversionError, match="has no callable 'nope'"):
        load_factory("tools.zoo.models:nope")
    broken = tmp_path / "broken_factory.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ConversionError, match="boom at import"):
        load_factory(f"{broken}:make")
    good = tmp_path / "good_factory.py"
    good.write_text(
        "import torch\ndef make():\n    return torch.nn.Linear(2, 2)\n"
        "def fail():\n    raise ValueError('bad size')\ndef text():\n    return 'x'\n"
    )
    assert isinstance(build_module(f"{good}:make", None), nn.Linear)
    with pytest.raises(ConversionError, match="failed: ValueError: bad size"):
        build_module(f"{good}:fail", None)
    with pytest.raises(ConversionError, match=r"returned str, not a torch\.nn\.Module"):
        build_module(f"{good}:text", None)


def test_checkpoints(tmp_path: Path) -> None:
    module = nn.Linear(2, 2)
    nested = tmp_path / "nested.pt"
    torch.save({"state_dict": nn.Linear(2, 2).state_dict(), "epoch": 3}, nested)
    load_weights(module, nested)
    wrong = tmp_path / "wrong.pt"
    torch.save(nn.Linear(3, 2).state_dict(), wrong)
    with pytest.raises(ConversionError, match="does not fit the factory's module"):
        load_weights(module, wrong)
    with pytest.raises(ConversionError, match="no such checkpoint"):
        load_weights(module, tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ConversionError, match="not a readable state-dict checkpoint"):
        load_weights(module, junk)


def test_names_from_forward_and_dict_outputs() -> None:
    module = TwoHeads()
    assert forward_input_names(module, 2) == ["image", "extra"]
    assert forward_input_names(nn.Sequential(nn.ReLU()), 1) == ["input"]
    assert identifier("input.1") == "input_1" and identifier("0x") == "input_0x"
    example = {"image": np.ones((2, 4), np.float32), "extra": np.zeros((2, 4), np.float32)}
    source = torch_source(module, example)
    assert source.output_names == ["scores", "probs"]
    sig = source.signature()
    assert [s.shape for s in sig.inputs] == [("batch", 4), ("batch", 4)]
    outputs = TorchRunner(source).run(example)
    assert set(outputs) == {"scores", "probs"} and outputs["probs"].shape == (2, 3)
    assert len(flatten_outputs((torch.ones(1), [torch.ones(1), {"a": torch.ones(1)}]))) == 3


def test_bad_examples_and_names() -> None:
    with pytest.raises(ConversionError, match="failed on the example inputs"):
        torch_source(nn.Linear(4, 3), {"x": np.ones((2, 5), np.float32)})
    with pytest.raises(ConversionError, match=r"2 output name\(s\)"):
        torch_source(nn.Linear(4, 3), {"x": np.ones((2, 4), np.float32)}, ["a", "b"])
