"""Builders and probes shared by the parallel tests.

:func:`chain_model` is a small model with a skip connection and two outputs, so that
cutting it (:func:`cut_model`, with ``onnx.utils.extract_model`` as a partition tool
would) gives stages that are wired by more than "the previous stage's outputs": stage 1
reads the request's ``x`` as well as stage 0's ``h1``, and the final output ``h1`` comes
from stage 0.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
from onnx import TensorProto, helper, numpy_helper

from edgeship_runtime.parallel import SHM_PREFIX
from tests.models import IR_VERSION, OPSET

WIDTH, HIDDEN, OUT = 8, 16, 4
_rng = np.random.default_rng(7)
W1 = _rng.standard_normal((WIDTH, HIDDEN)).astype(np.float32)
W2 = _rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32)
W3 = _rng.standard_normal((HIDDEN, OUT)).astype(np.float32)
W4 = _rng.standard_normal((WIDTH, OUT)).astype(np.float32)


def chain_model(path: str | os.PathLike[str]) -> Path:
    """``h1 = relu(x W1)``, ``h2 = tanh(h1 W2)``, ``y = h2 W3 + x W4``; outputs ``y``, ``h1``."""
    weights = [
        numpy_helper.from_array(w, n) for w, n in ((W1, "W1"), (W2, "W2"), (W3, "W3"), (W4, "W4"))
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "W2"], ["a2"]),
        helper.make_node("Tanh", ["a2"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W3"], ["a3"]),
        helper.make_node("MatMul", ["x", "W4"], ["skip"]),
        helper.make_node("Add", ["a3", "skip"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", OUT]),
            helper.make_tensor_value_info("h1", TensorProto.FLOAT, ["batch", HIDDEN]),
        ],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return Path(path)


def chain_reference(x: np.ndarray) -> dict[str, np.ndarray]:
    h1 = np.maximum(x @ W1, 0)
    return {"y": np.tanh(h1 @ W2) @ W3 + x @ W4, "h1": h1}


CUTS_2 = [(["x"], ["h1"]), (["h1", "x"], ["y"])]
CUTS_3 = [(["x"], ["h1"]), (["h1"], ["h2"]), (["h2", "x"], ["y"])]


def cut_model(
    model: Path,
    out_dir: Path,
    cuts: Sequence[tuple[list[str], list[str]]],
    inputs: Sequence[str] = ("x",),
    outputs: Sequence[str] = ("y", "h1"),
) -> Path:
    """Stage files and an ``edgeship.partition/1`` manifest in ``out_dir`` (stages listed
    out of order on purpose: the order comes from ``index``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (needs, makes) in enumerate(cuts):
        name = f"stage_{i}.onnx"
        onnx.utils.extract_model(str(model), str(out_dir / name), needs, makes)
        entries.append({"index": i, "file": name, "inputs": needs, "outputs": makes})
    manifest = {
        "schema": "edgeship.partition/1",
        "inputs": list(inputs),
        "outputs": list(outputs),
        "stages": list(reversed(entries)),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return out_dir


def requests(n: int, batch: int = 1, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((batch, WIDTH)).astype(np.float32)} for _ in range(n)]


def shm_entries(pid: int) -> list[str]:
    """Our shared-memory segments created by process ``pid`` still named in /dev/shm."""
    return glob.glob(f"/dev/shm/{SHM_PREFIX}{pid:x}-*")


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


def wait_gone(pids: Sequence[int], timeout: float = 10.0) -> list[int]:
    """The pids of ``pids`` still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(task) as f:
            found += [int(p) for p in f.read().split()]
    return found


def allowed_cpus(pid: int) -> list[int]:
    """The kernel's view of ``pid``'s affinity."""
    return sorted(os.sched_getaffinity(pid))
