"""Tiny model builders shared by every test (STYLE §9): each writes one file, returns its path.

ONNX graphs are written with ``onnx.helper`` at IR 8 / opset 17, so the oldest runtime we
support (ONNX Runtime 1.19 on Python 3.9) loads them too. Weights come from a fixed seed,
and the constants a test needs to recompute an output are module-level.

The ``.tflite`` fixture needs torch and ``litert_torch``; it is converted in a child process
(``python -m tests.models tflite OUT``) so their import time, threads and warnings stay out
of the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
OPSET = 17
REPO_ROOT = Path(__file__).resolve().parents[1]

# The multi-input model: a vocabulary of VOCAB tokens embedded in WIDTH floats.
VOCAB = 16
WIDTH = 8
EMBEDDING = np.random.default_rng(1).standard_normal((VOCAB, WIDTH)).astype(np.float32)

# The state model: h_out = tanh(x @ STATE_W + h_in @ STATE_U), y = h_out @ STATE_V.
STATE_IN, STATE_HIDDEN, STATE_OUT = 4, 8, 2
_rng = np.random.default_rng(2)
STATE_W = _rng.standard_normal((STATE_IN, STATE_HIDDEN)).astype(np.float32)
STATE_U = _rng.standard_normal((STATE_HIDDEN, STATE_HIDDEN)).astype(np.float32)
STATE_V = _rng.standard_normal((STATE_HIDDEN, STATE_OUT)).astype(np.float32)

# The failing model reshapes [batch, FAIL_WIDTH] to FAIL_SHAPE: only batch 1 fits.
FAIL_WIDTH = 6
FAIL_SHAPE = (2, 3)


def save_graph(graph: onnx.GraphProto, path: str | os.PathLike[str], opset: int = OPSET) -> Path:
    """``graph`` as a checked model (opset 17 unless given, IR 8) at ``path``."""
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeship-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return Path(path)


def scaled_weight(rng: np.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    """A float32 initializer of standard normals over √(fan-in) (``shape[0]``): layers of
    these keep activations near unit scale."""
    return numpy_helper.from_array(
        (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), name
    )


def _value(name: str, elem: int, shape: list[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def add_model(
    path: str | os.PathLike[str], width: int = 4, batch: int | str | None = "batch"
) -> Path:
    """``y = x + 1``; ``x`` float32 ``[batch, width]``.

    ``batch`` is a symbolic name by default; ``None`` writes an unnamed dynamic dim, an int
    a fixed one.
    """
    one = numpy_helper.from_array(np.ones((width,), np.float32), "one")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        "add",
        [_value("x", TensorProto.FLOAT, [batch, width])],
        [_value("y", TensorProto.FLOAT, [batch, width])],
        initializer=[one],
    )
    return save_graph(graph, path)


def stopwords_model(path: str | os.PathLike[str]) -> Path:
    """``y = StringNormalizer(x)`` dropping the stopword "the": strings in and out,
    ``[1, n]``; locale C.UTF-8 (ONNX Runtime's default, en_US.UTF-8, is missing on many
    machines, and it fails to load without it)."""
    node = helper.make_node("StringNormalizer", ["x"], ["y"], stopwords=["the"], locale="C.UTF-8")
    graph = helper.make_graph(
        [node],
        "stopwords",
        [_value("x", TensorProto.STRING, [1, "n"])],
        [_value("y", TensorProto.STRING, [1, "m"])],
    )
    return save_graph(graph, path)


def multi_input_model(path: str | os.PathLike[str]) -> Path:
    """Two inputs of two dtypes, two outputs, symbolic ``batch`` and ``seq`` dims.

    ``features`` float32 ``[batch, seq, WIDTH]`` and ``token_ids`` int64 ``[batch, seq]``
    (ids < VOCAB); ``out = features + EMBEDDING[token_ids]`` and ``pooled`` its mean over
    ``seq``.
    """
    table = numpy_helper.from_array(EMBEDDING, "embedding")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["embedding", "token_ids"], ["embedded"], axis=0),
            helper.make_node("Add", ["features", "embedded"], ["out"]),
            helper.make_node("ReduceMean", ["out"], ["pooled"], axes=[1], keepdims=0),
        ],
        "multi_input",
        [
            _value("features", TensorProto.FLOAT, ["batch", "seq", WIDTH]),
            _value("token_ids", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            _value("out", TensorProto.FLOAT, ["batch", "seq", WIDTH]),
            _value("pooled", TensorProto.FLOAT, ["batch", WIDTH]),
        ],
        initializer=[table],
    )
    return save_graph(graph, path)


def state_model(path: str | os.PathLike[str]) -> Path:
    """A GRU-like cell: inputs ``x [batch, 4]`` and ``h_in [batch, 8]``, outputs
    ``y [batch, 2]`` and ``h_out [batch, 8]`` (the next step's ``h_in``)."""
    weights = [
        numpy_helper.from_array(STATE_W, "W"),
        numpy_helper.from_array(STATE_U, "U"),
        numpy_helper.from_array(STATE_V, "V"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("MatMul", ["h_in", "U"], ["hu"]),
            helper.make_node("Add", ["xw", "hu"], ["pre"]),
            helper.make_node("Tanh", ["pre"], ["h_out"]),
            helper.make_node("MatMul", ["h_out", "V"], ["y"]),
        ],
        "state",
        [
            _value("x", TensorProto.FLOAT, ["batch", STATE_IN]),
            _value("h_in", TensorProto.FLOAT, ["batch", STATE_HIDDEN]),
        ],
        [
            _value("y", TensorProto.FLOAT, ["batch", STATE_OUT]),
            _value("h_out", TensorProto.FLOAT, ["batch", STATE_HIDDEN]),
        ],
        initializer=weights,
    )
    return save_graph(graph, path)


def state_step(x: np.ndarray, h_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The state model in numpy: ``(y, h_out)``."""
    h_out = np.tanh(x @ STATE_W + h_in @ STATE_U)
    return h_out @ STATE_V, h_out


def failing_model(path: str | os.PathLike[str]) -> Path:
    """Loads and validates for any batch, but Reshape to a fixed [2, 3] fails at run time
    unless ``batch == 1``: the fixture for :class:`InferenceError`."""
    target = numpy_helper.from_array(np.array(FAIL_SHAPE, np.int64), "target_shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "target_shape"], ["y"])],
        "failing",
        [_value("x", TensorProto.FLOAT, ["batch", FAIL_WIDTH])],
        [_value("y", TensorProto.FLOAT, list(FAIL_SHAPE))],
        initializer=[target],
    )
    return save_graph(graph, path)


def truncated_copy(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], keep: float = 0.5
) -> Path:
    """The first ``keep`` fraction of ``src``'s bytes: a download cut short."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: max(1, int(len(data) * keep))])
    return Path(dst)


def text_file(path: str | os.PathLike[str], text: str = "this is not a model\n") -> Path:
    """A non-model file (name it ``.onnx`` to pose as one)."""
    Path(path).write_text(text)
    return Path(path)


def empty_file(path: str | os.PathLike[str]) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


# ------------------------------------------------------------------------------ tflite

TFLITE_IN, TFLITE_IDS, TFLITE_OUT = 4, 5, 3


def convert_tflite(path: str | os.PathLike[str]) -> Path:
    """``tanh(x @ w + float(ids) @ v)`` converted by ``litert_torch`` (imports torch).

    Inputs ``x`` float32 ``[-1, 4]`` and ``ids`` int64 ``[-1, 5]`` (dynamic batch, 64-bit
    kept); output float32 ``[-1, 3]``. Matmul (not Linear, not a scalar multiply) is what
    the converter lowers with a dynamic batch dim.
    """
    import litert_torch
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.w = torch.nn.Parameter(torch.randn(TFLITE_IN, TFLITE_OUT, generator=g))
            self.v = torch.nn.Parameter(torch.randn(TFLITE_IDS, TFLITE_OUT, generator=g))

        def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            return torch.tanh(torch.matmul(x, self.w) + torch.matmul(ids.float(), self.v))

    batch = torch.export.Dim("batch", min=1, max=64)
    example = (torch.randn(2, TFLITE_IN), torch.zeros(2, TFLITE_IDS, dtype=torch.int64))
    converted = litert_torch.convert(
        Tiny().eval(), example, dynamic_shapes=({0: batch}, {0: batch}), enable_x64=True
    )
    converted.export(str(path))
    return Path(path)


def tflite_model(path: str | os.PathLike[str], timeout: float = 300.0) -> Path:
    """:func:`convert_tflite` in a child process; raises with its stderr tail on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.models", "tflite", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0 or not Path(path).is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"converting the tiny .tflite failed ({done.returncode}):\n{tail}")
    return Path(path)


# ------------------------------------------------------------------ field-style graphs
# Small graphs with the traits of models nobody here exported (issue 12): weights in
# Constant nodes, BatchNorm variances beyond float16, a classifier much smaller in magnitude
# than the body, probability maps and sequences as outputs.

FIELD_CHANNELS, FIELD_SIDE, FIELD_CLASSES = 8, 8, 5


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(value, name)
    )


def field_cnn_model(path: str | os.PathLike[str]) -> Path:
    """A Paddle-style CNN: every weight a ``Constant`` node, and a 1×1 conv whose first half
    of channels is scaled so that its BatchNorm variances are ~1e8 (beyond float16).

    ``x [batch, 4, 8, 8]`` → conv1×1 → BatchNorm → Relu → conv3×3 → Relu → GAP → Flatten →
    Gemm → ``y [batch, 5]`` (class scores).
    """
    rng = np.random.default_rng(5)
    c, k = FIELD_CHANNELS, 4
    w1 = rng.standard_normal((c, k)).astype(np.float32) * 0.5
    w1[: c // 2] *= 10000.0  # variances ~ k * (5e3)^2 = 1e8
    mean = np.zeros(c, np.float32)
    var = (w1.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)  # exact, x ~ N(0, 1)
    values = {
        "w1": w1.reshape(c, k, 1, 1),
        "bn_s": np.ones(c, np.float32),
        "bn_b": np.full(c, 0.1, np.float32),
        "bn_m": mean,
        "bn_v": var,
        "w2": (rng.standard_normal((c, c, 3, 3)) * 0.3).astype(np.float32),
        "fc_w": rng.standard_normal((FIELD_CLASSES, c)).astype(np.float32),
        "fc_b": np.zeros(FIELD_CLASSES, np.float32),
    }
    nodes = [_const(n, v) for n, v in values.items()]
    nodes += [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node(
            "BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["b1"], name="bn"
        ),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "field_cnn",
        [_value("x", TensorProto.FLOAT, ["batch", 4, FIELD_SIDE, FIELD_SIDE])],
        [_value("y", TensorProto.FLOAT, ["batch", FIELD_CLASSES])],
    )
    return save_graph(graph, path)


def small_head_model(path: str | os.PathLike[str]) -> Path:
    """``x [batch, 16]`` → Gemm 16→64 → Relu → Gemm 64→4 (weights 100× smaller than the
    body's) → ``y [batch, 4]``: global magnitude pruning at 0.5 removes the whole head."""
    rng = np.random.default_rng(6)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 64)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(64).astype(np.float32) * 0.1, "b1"),
        numpy_helper.from_array((rng.standard_normal((64, 4)) * 0.01).astype(np.float32), "w2"),
        numpy_helper.from_array(np.arange(4, dtype=np.float32) * 0.01, "b2"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="body"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="head"),
        ],
        "small_head",
        [_value("x", TensorProto.FLOAT, ["batch", 16])],
        [_value("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=inits,
    )
    return save_graph(graph, path)


def map_model(path: str | os.PathLike[str], side: int | str = "height") -> Path:
    """A probability map, like a text detector's: ``x [batch, 3, H, H]`` → Conv 3→4 →
    Relu → Conv 4→1 → Sigmoid → ``y [batch, 1, H, H]``; ``H`` dynamic (``side`` a name)
    or fixed (an int)."""
    rng = np.random.default_rng(7)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((1, 4, 3, 3)).astype(np.float32), "w2"),
    ]
    pads = [1, 1, 1, 1]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=pads),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
            helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=pads),
            helper.make_node("Sigmoid", ["c2"], ["y"], name="sigmoid"),
        ],
        "map",
        [_value("x", TensorProto.FLOAT, ["batch", 3, side, side])],
        [_value("y", TensorProto.FLOAT, ["batch", 1, side, side])],
        initializer=inits,
    )
    return save_graph(graph, path)


def tiny_matmul_model(path: str | os.PathLike[str]) -> Path:
    """``y = x @ W``, ``W`` 3×2: so small that INT8's scales and extra nodes outweigh it."""
    w = np.random.default_rng(8).standard_normal((3, 2)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "tiny_matmul",
        [_value("x", TensorProto.FLOAT, ["batch", 3])],
        [_value("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return save_graph(graph, path)


def two_output_model(
    path: str | os.PathLike[str], features: int = 16, batch: int | str = "batch"
) -> Path:
    """``scores = x @ Wa`` (10 classes, unit-scale weights) and ``mask = x @ Wb`` (8 values,
    weights 1000× smaller): global magnitude pruning at 50 % zeroes all of ``Wb`` and none
    of ``Wa``, so the second output collapses while the first is untouched. ``batch``: the
    first dim, dynamic (a name) or fixed (an int, as a batch-1 export has it)."""
    rng = np.random.default_rng(11)
    wa = rng.standard_normal((features, 10)).astype(np.float32)
    wb = (rng.standard_normal((features, 10)) * 1e-3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "wa"], ["scores"], name="head_a"),
            helper.make_node("MatMul", ["x", "wb"], ["mask"], name="head_b"),
        ],
        "two_outputs",
        [_value("x", TensorProto.FLOAT, [batch, features])],
        [
            _value("scores", TensorProto.FLOAT, [batch, 10]),
            _value("mask", TensorProto.FLOAT, [batch, 10]),
        ],
        initializer=[numpy_helper.from_array(wa, "wa"), numpy_helper.from_array(wb, "wb")],
    )
    return save_graph(graph, path)


# The audio front-end: SAMPLES of audio → log-mel frames of MELS bands, as a wake-word
# model's front-end computes them (an STFT as two strided convolutions).
SAMPLES, N_FFT, HOP, MELS = 1600, 64, 16, 8


def log_mel_model(path: str | os.PathLike[str]) -> Path:
    """``audio [1, SAMPLES]`` → STFT (convolutions with the windowed cosines and sines) →
    power → mel filterbank (MatMul) → 10·log10 → floored at 80 dB below the peak (a final
    ``Max``, an op onnxconverter-common keeps in float32) → ``mel [1, frames, MELS]``;
    exported from torch."""
    import torch

    class LogMel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            n, k = np.arange(N_FFT), np.arange(N_FFT // 2 + 1)[:, None]
            window = np.hanning(N_FFT)
            real = (np.cos(2 * np.pi * k * n / N_FFT) * window)[:, None, :]
            imag = (-np.sin(2 * np.pi * k * n / N_FFT) * window)[:, None, :]
            self.register_buffer("real", torch.tensor(real, dtype=torch.float32))
            self.register_buffer("imag", torch.tensor(imag, dtype=torch.float32))
            bank = np.random.default_rng(9).random((N_FFT // 2 + 1, MELS))
            self.register_buffer("bank", torch.tensor(bank, dtype=torch.float32))

        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            x = audio[:, None, :]
            re = torch.nn.functional.conv1d(x, self.real, stride=HOP)
            im = torch.nn.functional.conv1d(x, self.imag, stride=HOP)
            mel = torch.matmul((re**2 + im**2).transpose(1, 2), self.bank)
            db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
            return torch.maximum(db, db.max() - 80.0)

    example = torch.randn(1, SAMPLES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogMel().eval(),
            (example,),
            str(path),
            input_names=["audio"],
            output_names=["mel"],
            opset_version=OPSET,
            dynamo=False,
        )
    return Path(path)


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "tflite":
        print("usage: python -m tests.models tflite OUT.tflite", file=sys.stderr)
        return 2
    convert_tflite(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))


# The LSTM model: LSTM_STEPS steps of LSTM_IN features, LSTM_HIDDEN units per direction.
LSTM_STEPS, LSTM_IN, LSTM_HIDDEN = 5, 3, 4


def lstm_model(
    path: str | os.PathLike[str],
    direction: str = "forward",
    state: bool = True,
    batch: int | str = "n",
    head: bool = False,
) -> Path:
    """An ONNX ``LSTM`` with weights, recurrent weights and biases from a fixed seed: ``x``
    [LSTM_STEPS, batch, LSTM_IN], with ``state`` the initial
    ``h``/``c`` as inputs [dirs, batch, LSTM_HIDDEN] (as Silero's VAD takes them); outputs
    ``y``, ``y_h``, ``y_c`` (with ``head``, ``p = sigmoid(y)`` in place of ``y``, as Silero
    returns its probability before the states)."""
    rng = np.random.default_rng(7)
    dirs = 2 if direction == "bidirectional" else 1
    gates = 4 * LSTM_HIDDEN

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)

    def value(name: str, shape: list[int | str | None]) -> onnx.ValueInfoProto:
        return _value(name, TensorProto.FLOAT, shape)

    inputs = [value("x", [LSTM_STEPS, batch, LSTM_IN])]
    if state:
        inputs += [value(s, [dirs, batch, LSTM_HIDDEN]) for s in ("h", "c")]
    node = helper.make_node(
        "LSTM",
        ["x", "w", "r", "b", "", *(["h", "c"] if state else [])],
        ["y", "y_h", "y_c"],
        name="lstm",
        hidden_size=LSTM_HIDDEN,
        direction=direction,
    )
    nodes = [node, *([helper.make_node("Sigmoid", ["y"], ["p"], name="head")] if head else [])]
    graph = helper.make_graph(
        nodes,
        "lstm",
        inputs,
        [
            value("p" if head else "y", [LSTM_STEPS, dirs, batch, LSTM_HIDDEN]),
            value("y_h", [dirs, batch, LSTM_HIDDEN]),
            value("y_c", [dirs, batch, LSTM_HIDDEN]),
        ],
        [
            weight("w", dirs, gates, LSTM_IN),
            weight("r", dirs, gates, LSTM_HIDDEN),
            weight("b", dirs, 2 * gates),
        ],
    )
    return save_graph(graph, path)
