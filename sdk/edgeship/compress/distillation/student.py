"""Knowledge distillation: a small student learns the teacher's outputs (and the labels).

The teacher is anything the runtime runs (ONNX, TFLite) or a torch module (exported to
ONNX first); its outputs on the data are computed once. The student is the user's
``module:factory``, or a copy of the teacher ``width`` times as wide: a torch teacher is
narrowed with torch-pruning, an ONNX teacher by graph surgery (:mod:`.channels`), keeping
the most important channels' weights as the starting point. The trained student is
exported to ONNX.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgeship.compress._data import Dataset, require
from edgeship.compress._evaluate import first, predict
from edgeship.compress.config import DistillConfig
from edgeship.compress.methods import Job, Outcome
from edgeship.compress.pruning.channels import shrink
from edgeship.compress.pruning.channels_torch import narrow
from edgeship.compress.training.loop import fit
from edgeship.compress.training.torch_graph import OnnxModule
from edgeship.compress.training.torch_model import TorchModel, count_parameters, export_onnx
from edgeship.core.errors import CompressionError, NothingToPrune, UsageError
from edgeship.models import onnx_graph
from edgeship.models.model_file import ModelFile

__all__ = ["distill"]


def distill(job: Job[DistillConfig]) -> Outcome:
    """``job.base`` is the teacher, a runnable model file (for a torch teacher: its ONNX
    export, with the torch model itself in ``job.source``)."""
    teacher, source, config, out = job.base, job.source, job.config, job.out
    data = require(job.data, "distillation")
    soft = first(predict(teacher, data)).reshape(len(data), -1)
    details: dict[str, Any] = {"temperature": config.train.temperature, "alpha": config.train.alpha}
    if config.student is not None:
        module: nn.Module = TorchModel(config.student).build()
        details["student"] = config.student
        onnx_model = None
    elif source is not None:
        module = source.build()
        try:
            narrow(module, 1.0 - config.width, "l1", data.take(256))
        except NothingToPrune as exc:
            raise _no_student(source.factory, exc) from exc
        details["student"] = f"{source.factory} at width {config.width} (torch-pruning)"
        onnx_model = None
    else:
        if ModelFile.of(teacher).format != "onnx":
            raise UsageError("a TFLite teacher needs a student (--student module:factory)")
        onnx_model = onnx_graph.load(teacher)
        try:
            shrink(onnx_model, 1.0 - config.width, "l1")
        except NothingToPrune as exc:
            raise _no_student(teacher.name, exc) from exc
        module = OnnxModule(onnx_model)
        details["student"] = f"{teacher.name} at width {config.width} (graph surgery)"
    _check_outputs(module, data, soft.shape[1])
    details["student_parameters"] = count_parameters(module)
    details["training"] = fit(module, data, soft, config.train, on_epoch=job.on_epoch).to_dict()
    if onnx_model is None:
        export_onnx(module, data.take(2).feeds, out, data.names)
    else:
        assert isinstance(module, OnnxModule)
        onnx_graph.save(module.write_back(onnx_model), out)
    notes = []
    if details["training"]["stopped"] == "epochs" and config.train.target_accuracy is not None:
        notes.append(
            f"target {config.train.target_accuracy} not reached in {config.train.epochs} epochs"
        )
    return Outcome(details=details, notes=notes)


def _no_student(teacher: str, exc: NothingToPrune) -> CompressionError:
    why = "; ".join(f"{k}: {v}" for k, v in sorted(exc.reasons.items()))
    return CompressionError(
        f"distill cannot derive a narrower student from {teacher}: no layer can be made "
        f"narrower ({why}); give one with --student module:factory"
    )


def _check_outputs(module: nn.Module, data: Dataset, width: int) -> None:
    from edgeship.compress.training.loop import predict_torch

    try:
        got = predict_torch(module, data.take(2)).shape[1]
    except RuntimeError as exc:
        raise CompressionError(f"the student does not run on the data: {exc}") from exc
    if got != width:
        raise CompressionError(f"the student has {got} outputs per sample, the teacher {width}")
