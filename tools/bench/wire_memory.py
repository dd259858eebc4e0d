"""Memory on the wire: the runtime's peak resident memory for a ``run`` of a large input.

For each input size (default 10, 60 and 120 MB of float32), a fresh ``local`` runtime
(the same process and protocol an SSH board runs) loads a small model, ``y = x @ w``
with ``x`` [N, 1024] and ``w`` [1024, 16] (64 KiB; the output is 1/64 of the input), and
runs it once on that input through :meth:`Loaded.run`. Printed per size: the runtime's
resident memory after loading (idle), its peak over its whole life (``VmHWM`` from
``/proc/PID/status``, read after the run), the peak against input + model size, and the
run's wall time on the host (sending, running, receiving the outputs).

Exits 1 when a peak exceeds the idle runtime + input + model + ``--margin`` MB (default
50). The idle runtime (the interpreter, numpy and ONNX Runtime, before any request) is
printed beside it: a board's memory has to hold it too.

Usage: ``python tools/bench/wire_memory.py [--sizes 10 60 120] [--margin 50]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeship.targets.local import LocalTarget

MB = 1_000_000
WIDTH = 1024
OUTPUTS = 16


def model(path: Path) -> Path:
    """``y = x @ w``: float32 ``x`` [N, 1024], ``w`` [1024, 16]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((WIDTH, OUTPUTS)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", OUTPUTS])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def status_mb(pid: int, key: str) -> float:
    """``VmRSS``/``VmHWM`` of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"no {key} for process {pid}")


def measure(path: Path, size_mb: float) -> dict[str, float]:
    """One fresh runtime, one run of ``size_mb`` MB of input."""
    rows = int(size_mb * MB) // (4 * WIDTH)
    x = np.random.default_rng(1).standard_normal((rows, WIDTH)).astype(np.float32)
    with LocalTarget() as target, target.load(path) as loaded:
        pid = int(target.client().hello["pid"])
        idle = status_mb(pid, "VmRSS")
        started = time.perf_counter()
        y = loaded.run({"x": x})["y"]
        wall = time.perf_counter() - started
        peak = status_mb(pid, "VmHWM")
    assert y.shape == (rows, OUTPUTS)
    return {"input": x.nbytes / MB, "idle": idle, "peak": peak, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 60, 120], help="MB")
    parser.add_argument("--margin", type=float, default=50.0, help="MB (default 50)")
    ns = parser.parse_args(argv)
    over = False
    with tempfile.TemporaryDirectory() as tmp:
        path = model(Path(tmp) / "wide.onnx")
        model_mb = path.stat().st_size / MB
        print(f"model {model_mb:.2f} MB; margin {ns.margin:g} MB")
        heads = ("input MB", "idle MB", "peak MB", "peak-idle-input-model", "run s")
        print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (9, 8, 8, 22, 6), strict=True)))
        for size in ns.sizes:
            m = measure(path, size)
            budget = m["input"] + model_mb
            over |= m["peak"] > m["idle"] + budget + ns.margin
            print(
                f"{m['input']:9.1f} {m['idle']:8.1f} {m['peak']:8.1f} "
                f"{m['peak'] - m['idle'] - budget:22.1f} {m['wall_s']:6.2f}"
            )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
