"""What a compression starts from: a model file, or a torch model exported to ONNX first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeship.compress._data import Dataset
from edgeship.core.errors import UsageError
from edgeship.models.model_file import ModelFile

if TYPE_CHECKING:
    from edgeship.compress.training.torch_model import TorchModel

__all__ = ["ModelLike", "base_format", "base_model"]

ModelLike = str | Path
"""A model file (.onnx/.tflite) or a :class:`~edgeship.compress.training.torch_model.TorchModel`."""


def base_format(model: object) -> str:
    """The format of the base ``model`` gives: a file's own, ``onnx`` for a torch model."""
    return ModelFile.of(model).format if isinstance(model, str | Path) else "onnx"


def base_model(model: object, data: Dataset | None, out: Path) -> tuple[Path, TorchModel | None]:
    """The base model file, and the torch model it was exported from (a torch model is
    exported to ``<out stem>.base.onnx`` beside ``out``)."""
    if isinstance(model, str | Path):
        path = Path(model)
        ModelFile.of(path)  # ModelError for a missing/unknown file
        if path.resolve() == out.resolve():
            raise UsageError(f"--out {out} would overwrite the model itself")
        return path, None
    from edgeship.compress.training.torch_model import TorchModel, export_onnx

    if not isinstance(model, TorchModel):
        raise UsageError(f"model must be a file path or a TorchModel, not {type(model)}")
    if data is None:
        raise UsageError("a torch model needs --data (its input names and shapes)")
    base = out.with_name(f"{out.stem}.base.onnx")
    export_onnx(model.build(), data.take(2).feeds, base, data.names)
    return base, model
