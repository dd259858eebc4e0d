"""The one training loop: its loss and held-out metric fit the kind of output (class
scores, rows of probabilities, maps), and it keeps its best epoch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgeship.compress import Dataset, TrainConfig
from edgeship.compress.training.loop import (
    fit,
    metric,
    outputs_of,
    predict_outputs,
    predict_torch,
)
from edgeship.compress.training.torch_graph import OnnxModule
from tests.models import LSTM_HIDDEN, LSTM_IN, lstm_model, map_model
from tools.zoo.models import mlp


def _data(shape: tuple[int, ...], name: str = "x", n: int = 32) -> Dataset:
    return Dataset({name: np.random.default_rng(0).random((n, *shape), dtype=np.float32)})


def _nudge(module: nn.Module, scale: float) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * p.std() * torch.randn(p.shape, generator=gen))


def _rows() -> nn.Module:
    """``(n, 4)`` → three rows of four probabilities each, like a recogniser's steps."""
    return nn.Sequential(_features(), nn.Softmax(-1))


def _features() -> nn.Module:
    """``(n, 4)`` → ``(n, 3, 4)`` unbounded features."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 12), nn.Unflatten(1, (3, 4)))


def _map(tmp_path: Path) -> Callable[[], nn.Module]:
    path = map_model(tmp_path / "map.onnx", 6)
    return lambda: OnnxModule(onnx.load(str(path)))


def test_outputs_are_told_apart(patterns: dict[str, Path], tmp_path: Path) -> None:
    classes = outputs_of(OnnxModule(onnx.load(str(patterns["residual"]))), _data((4, 6, 6)))
    rows = outputs_of(_rows(), _data((4,)))
    maps = outputs_of(_map(tmp_path)(), _data((3, 6, 6)))
    features = outputs_of(_features(), _data((4,)))
    kinds = (classes.kind, rows.kind, maps.kind, features.kind)
    assert kinds == ("classes", "distributions", "probabilities", "values")
    assert rows.width == 4
    # the range is judged on every row of the teacher when there is one
    assert outputs_of(_map(tmp_path)(), _data((3, 6, 6)), np.array([[0.5, 1.5]])).kind == "values"


class _Named(nn.Module):
    """``(n, 4)`` → ``(n, 1, 8)``, shaped like class scores, under the name it is given."""

    def __init__(self, name: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.output_names = [name]
        self.layer = nn.Sequential(nn.Linear(4, 8), nn.Unflatten(1, (1, 8)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def test_an_output_named_as_a_state_is_not_trained_as_classes() -> None:
    """An LSTM's ``hn`` ``[1, 1, 128]`` is shaped like class scores: its arg-max
    "agreement" chose which epoch of a pruned Silero was kept."""
    assert outputs_of(_Named("logits"), _data((4,))).kind == "classes"
    assert outputs_of(_Named("hn"), _data((4,))).kind == "values"


@pytest.mark.parametrize("kind", ["map", "rows", "features"])
def test_each_kind_of_output_is_trained_towards_its_base(tmp_path: Path, kind: str) -> None:
    make, shape, loss = {
        "map": (_map(tmp_path), (3, 6, 6), "binary-cross-entropy"),
        "rows": (_rows, (4,), "kl-per-row"),
        "features": (_features, (4,), "squared-error"),
    }[kind]
    data = _data(shape)
    teacher = predict_torch(make(), data)
    student = make()
    _nudge(student, 0.5)
    _, before = metric(predict_torch(student, data), data, teacher, classes=False)
    log = fit(student, data, teacher, TrainConfig(epochs=8, lr=1e-2, batch_size=8))
    _, after = metric(predict_torch(student, data), data, teacher, classes=False)
    assert (log.loss, log.metric) == (loss, "cosine")
    assert before < 0.99 and after > before + 0.01
    assert after == max(log.history)


def test_the_best_epoch_is_kept_when_a_later_one_overshoots(test_data: Dataset) -> None:
    data = test_data.take(64)
    module = mlp()  # untrained: labels only
    log = fit(module, data, None, TrainConfig(epochs=6, lr=0.5, batch_size=8))
    _, kept = metric(predict_torch(module, data), data, None)
    assert log.kept_epoch == int(np.argmax(log.history)) + 1 < log.epochs
    assert kept == max(log.history) > log.history[-1]


def test_a_state_given_once_per_call_goes_whole_to_every_step(tmp_path: Path) -> None:
    """Silero's sequence VAD: one LSTM step per chunk row, ``h``/``c`` [1, 1, hidden] once
    per call beside them (indexed by sample, they ran out after the first row)."""
    path = lstm_model(tmp_path / "lstm.onnx", batch=1)
    rng = np.random.default_rng(3)
    state = np.zeros((1, 1, LSTM_HIDDEN), np.float32)
    feeds = {"x": rng.standard_normal((24, 1, LSTM_IN)).astype(np.float32), "h": state, "c": state}
    data = Dataset(feeds, fixed=frozenset({"h", "c"}))
    teacher = predict_torch(OnnxModule(onnx.load(str(path))), data)
    student = OnnxModule(onnx.load(str(path)))
    _nudge(student, 0.5)
    log = fit(student, data, teacher, TrainConfig(epochs=6, lr=1e-2, val_fraction=0.0))
    assert log.epochs == 6 and log.stopped == "epochs"
    assert log.history[log.kept_epoch - 1] > log.history[0]


def test_every_output_is_fitted_where_the_first_alone_let_the_states_drift(
    tmp_path: Path,
) -> None:
    """Silero's VAD returns its probability, then its LSTM's states: fine-tuned on the
    probability alone, a pruned model's states drifted (cosine 0.70); fitted on every
    output, the cell state comes back too, and the metric is the worst output's."""
    path = lstm_model(tmp_path / "lstm.onnx", batch=1, head=True)
    rng = np.random.default_rng(3)
    state = np.zeros((1, 1, LSTM_HIDDEN), np.float32)
    feeds = {"x": rng.standard_normal((24, 1, LSTM_IN)).astype(np.float32), "h": state, "c": state}
    data = Dataset(feeds, fixed=frozenset({"h", "c"}))
    teachers = predict_outputs(OnnxModule(onnx.load(str(path))), data)
    assert len(teachers) == 3

    def cell_cosine(fitted: np.ndarray | list[np.ndarray]) -> tuple[float, str]:
        student = OnnxModule(onnx.load(str(path)))
        _nudge(student, 0.5)
        log = fit(student, data, fitted, TrainConfig(epochs=8, lr=1e-2, val_fraction=0.0))
        _, cosine = metric(predict_outputs(student, data)[2], data, teachers[2], classes=False)
        return cosine, log.metric

    first_only, named_first = cell_cosine(teachers[0])
    every, named_every = cell_cosine(teachers)
    assert every > first_only and every > 0.9
    assert not named_first.startswith("worst") and named_every.startswith("worst of 3 outputs'")


def test_the_starting_weights_are_kept_when_no_epoch_beats_them(test_data: Dataset) -> None:
    """A learning rate that only wrecks the model: every epoch scores below the start,
    so training gives back the weights it began from (kept epoch 0)."""
    data = test_data.take(64)
    teacher_module = mlp()
    fit(teacher_module, data, None, TrainConfig(epochs=4, lr=1e-2, batch_size=8))
    teacher = predict_torch(teacher_module, data)
    before = {k: v.clone() for k, v in teacher_module.state_dict().items()}
    log = fit(teacher_module, data, teacher, TrainConfig(epochs=3, lr=50.0, batch_size=8))
    assert log.start is not None and log.start > 0.9  # accuracy on the labels
    assert log.kept_epoch == 0 and all(h < log.start for h in log.history)
    after = teacher_module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
