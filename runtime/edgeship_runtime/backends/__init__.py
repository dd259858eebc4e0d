"""Backend registry. Registering imports nothing heavy: engines load on first use."""

from __future__ import annotations

from .base import (
    Backend,
    BackendInfo,
    Session,
    SessionOptions,
    backend_names,
    choose_backend,
    get_backend,
    register_backend,
)
from .onnxruntime import OnnxRuntimeBackend
from .tflite import TFLiteBackend

register_backend(OnnxRuntimeBackend.name, OnnxRuntimeBackend)
register_backend(TFLiteBackend.name, TFLiteBackend)

__all__ = [
    "Backend",
    "BackendInfo",
    "Session",
    "SessionOptions",
    "backend_names",
    "choose_backend",
    "get_backend",
    "register_backend",
]
