"""TFLite backend: LiteRT's Interpreter (``ai_edge_litert``), else ``tflite_runtime``
(the order of its catalog entry's engine modules).

XNNPACK is the interpreter's default CPU delegate; ``threads`` sets its thread count.
Which delegate really took part is read from the execution plan after allocation.

LiteRT's C++ announces the delegate on file descriptor 2 ("INFO: Created TensorFlow Lite
XNNPACK delegate for CPU.") whatever the log level; :func:`_without_notices` drops that
line and passes anything else written meanwhile on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any, Dict, List

import numpy as np

from ..errors import InferenceError, ModelError
from ..signature import Signature, TensorSpec
from .base import EngineBackend, SessionOptions


class TFLiteSession:
    def __init__(self, interpreter: Any) -> None:
        self._it = interpreter
        self._names = _signature_names(interpreter)
        self._inputs = self._named(interpreter.get_input_details())
        self._outputs = self._named(interpreter.get_output_details())
        self.signature = Signature(
            tuple(_spec(d) for d in self._inputs), tuple(_spec(d) for d in self._outputs)
        )
        self._shapes = {d["name"]: tuple(d["shape"]) for d in self._inputs}

    def run(self, feeds: Mapping[str, np.ndarray]) -> List[np.ndarray]:
        it = self._it
        try:
            if any(self._shapes[d["name"]] != feeds[d["name"]].shape for d in self._inputs):
                self._resize(feeds)
            for d in self._inputs:
                it.set_tensor(d["index"], feeds[d["name"]])
            it.invoke()
            return [it.get_tensor(d["index"]) for d in self._outputs]
        except Exception as exc:
            raise InferenceError(f"LiteRT failed to run the model: {str(exc).strip()}") from exc

    def _resize(self, feeds: Mapping[str, np.ndarray]) -> None:
        for d in self._inputs:
            self._it.resize_tensor_input(d["index"], list(feeds[d["name"]].shape), strict=True)
        with _without_notices():
            self._it.allocate_tensors()
        self._inputs = self._named(self._it.get_input_details())
        self._outputs = self._named(self._it.get_output_details())
        self._shapes = {d["name"]: tuple(d["shape"]) for d in self._inputs}

    def _named(self, details: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return [dict(d, name=self._names.get(d["index"], d["name"])) for d in details]

    def execution(self) -> Dict[str, List[str]]:
        ops = self._it._get_ops_details()
        delegated = any(op.get("op_name") == "DELEGATE" for op in ops)
        return {"delegates": ["XNNPACK"] if delegated else []}

    def close(self) -> None:
        self._it = None


class TFLiteBackend(EngineBackend):
    """LiteRT's adapter; its name, formats and interpreter modules are its catalog entry's."""

    def load(self, path: str, options: SessionOptions) -> TFLiteSession:
        module = self.engine()
        try:
            with _without_notices():
                interpreter = module.Interpreter(
                    model_path=path, num_threads=options.threads or None
                )
                interpreter.allocate_tensors()
        except Exception as exc:
            raise ModelError(f"{path}: not a loadable TFLite model ({exc})") from exc
        return TFLiteSession(interpreter)


NOTICES = (b"INFO: Created TensorFlow Lite",)
"""Starts of the lines LiteRT writes on every load that say nothing a user can act on."""


@contextlib.contextmanager
def _without_notices() -> Iterator[None]:
    """Catch what is written to file descriptor 2 in the block; write it back without
    :data:`NOTICES`. Warnings and errors (from LiteRT or anyone else) still get through."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        saved = -1
    if saved < 0:  # no descriptor 2 to borrow: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [
                line
                for line in sink.read().splitlines(keepends=True)
                if not line.startswith(NOTICES)
            ]
            if kept:
                os.write(2, b"".join(kept))


def _signature_names(interpreter: Any) -> Dict[int, str]:
    """Tensor index → the name its signature gives it (``input`` rather than
    ``serving_default_input:0``), when the model has exactly one signature; else nothing,
    and the tensor names are used."""
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return {}
    runner = interpreter.get_signature_runner(next(iter(signatures)))
    names = {d["index"]: name for name, d in runner.get_input_details().items()}
    names.update({d["index"]: name for name, d in runner.get_output_details().items()})
    return names


def _spec(detail: Dict[str, Any]) -> TensorSpec:
    signature = detail.get("shape_signature")
    dims = signature if signature is not None and len(signature) else detail["shape"]
    shape = tuple(int(d) if int(d) >= 0 else None for d in dims)
    return TensorSpec(str(detail["name"]), shape, np.dtype(detail["dtype"]).name)
