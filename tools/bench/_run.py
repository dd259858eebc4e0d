"""The real-model benchmark's own model runner: ONNX Runtime and LiteRT sessions opened
here, one sample a call, apart from edgeship's runners (see :mod:`_judge`).

Feeds come from a corpus data file (``.npz``: inputs by name, first axis samples; an
array whose first axis is not the samples', such as a recurrent state or a scalar rate,
is given whole to every call). A result whose inputs were renamed (a conversion to TFLite)
is fed by position.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Port", "Session", "latency_ratio", "rows"]

Port = tuple[str, str, tuple[int | None, ...]]
"""An input or output: name, dtype, shape (``None`` for a dynamic dim)."""


class Session:
    """One model file opened for single-threaded inference."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._runner: Any = None
        if path.suffix == ".tflite":
            from ai_edge_litert.interpreter import Interpreter

            self._interp = Interpreter(model_path=str(path), num_threads=1)
            sigs = self._interp.get_signature_list()
            if sigs:
                key = next(iter(sigs))
                self._runner = self._interp.get_signature_runner(key)
                ins, outs = self._runner.get_input_details(), self._runner.get_output_details()
                self.inputs = _in_model_order(ins, self._interp.get_input_details())
                self.outputs = _in_model_order(outs, self._interp.get_output_details())
            else:
                self.inputs = [_port(d["name"], d) for d in self._interp.get_input_details()]
                self.outputs = [_port(d["name"], d) for d in self._interp.get_output_details()]
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._ort = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.inputs = [_ort_port(p) for p in self._ort.get_inputs()]
            self.outputs = [_ort_port(p) for p in self._ort.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for one call; ``feeds`` by this model's names or, where they
        differ, by position, each as the dtype this model declares (a conversion that said
        it changed an input's dtype is fed as the user it told would feed it)."""
        names = [p[0] for p in self.inputs]
        if set(feeds) != set(names):
            feeds = dict(zip(names, feeds.values(), strict=True))
        feeds = {n: np.asarray(feeds[n]).astype(dtype, copy=False) for n, dtype, _ in self.inputs}
        if self.path.suffix != ".tflite":
            values = self._ort.run(None, feeds)
            return {p[0]: np.asarray(v) for p, v in zip(self.outputs, values, strict=True)}
        if self._runner is not None:
            got = self._runner(**feeds)
            return {p[0]: np.asarray(got[p[0]]) for p in self.outputs}
        return self._invoke(feeds)

    def _invoke(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        details = self._interp.get_input_details()
        resized = False
        for d in details:
            if tuple(d["shape"]) != feeds[d["name"]].shape:
                self._interp.resize_tensor_input(d["index"], list(feeds[d["name"]].shape))
                resized = True
        if resized or not getattr(self, "_allocated", False):
            self._interp.allocate_tensors()
            self._allocated = True
        for d in details:
            self._interp.set_tensor(d["index"], feeds[d["name"]])
        self._interp.invoke()
        return {
            d["name"]: self._interp.get_tensor(d["index"]).copy()
            for d in self._interp.get_output_details()
        }


def _in_model_order(named: dict[str, dict[str, Any]], tensors: list[dict[str, Any]]) -> list[Port]:
    """A signature's ports (a map, listed by name) in the model's own tensor order: what
    the source's order became, so that ports compare position by position."""
    order = [d["index"] for d in tensors]
    ranked = sorted(named.items(), key=lambda item: order.index(item[1]["index"]))
    return [_port(n, d) for n, d in ranked]


def _port(name: str, detail: dict[str, Any]) -> Port:
    signature = detail.get("shape_signature", detail["shape"])
    shape = tuple(None if int(d) < 0 else int(d) for d in signature)
    return name, np.dtype(detail["dtype"]).name, shape


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _ort_port(arg: Any) -> Port:
    dtype = _ORT_TYPES.get(arg.type, arg.type.removeprefix("tensor(").removesuffix(")"))
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
    return arg.name, dtype, shape


def rows(data: Path, names: list[str], last: int) -> list[dict[str, np.ndarray]]:
    """The data file's last ``last`` samples, one feed each, in the model's input order
    (``names``); the data's arrays are matched by name, else by position."""
    with np.load(data) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "labels"}
    if set(names) <= set(arrays):
        arrays = {n: arrays[n] for n in names}
    else:
        arrays = dict(zip(names, arrays.values(), strict=False))
    n = max(a.shape[0] for a in arrays.values() if a.ndim)
    feeds = []
    for i in range(n - last, n):
        feeds.append(
            {k: a[i : i + 1] if a.ndim and a.shape[0] == n else a for k, a in arrays.items()}
        )
    return feeds


def latency_ratio(
    base: Session, got: Session, feed: dict[str, np.ndarray], budget_s: float = 2.0
) -> float:
    """The result's median latency over the base's on one feed, the two run in turn
    (10–300 rounds, about ``budget_s`` seconds of the base's time), after one warm-up each."""
    base.run(feed)
    got.run(feed)
    t0 = time.perf_counter()
    base.run(feed)
    once = max(time.perf_counter() - t0, 1e-6)
    times: list[list[float]] = [[], []]
    for _ in range(int(min(300, max(10, budget_s / once)))):
        for k, session in enumerate((base, got)):
            t0 = time.perf_counter()
            session.run(feed)
            times[k].append(time.perf_counter() - t0)
    return float(np.median(times[1]) / np.median(times[0]))
