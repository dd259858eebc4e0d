"""The real-model corpus of ``real_models.py``: models nobody here trained, no hub download.

Two sources, both offline:

* model files that pip packages ship inside their wheels (the ``corpus`` extra):
  ``rapidocr-onnxruntime`` carries PaddleOCR's detector, direction classifier and
  recogniser as Paddle2ONNX exports (weights in ``Constant`` nodes, BatchNorm variances of
  ~1e8, ``Shape``/``Resize`` arithmetic, dynamic H/W), ``silero-vad`` its voice activity
  detector in two exports (state inputs, a scalar sample rate, an ``If`` over two
  sub-models; its data holds the state and rate once, as per-call inputs);
* architectures built here with random weights whose BatchNorm statistics are calibrated
  on data (train-mode passes), so activations have realistic ranges: a MobileNetV3-like
  CNN with squeeze-and-excitation blocks, a transformer encoder over int64 token ids
  (``torch.nn.TransformerEncoder``), a TFLite model stripped of its SignatureDef and one
  with FLOAT16 weights behind DEQUANTIZE ops.

Each entry is a :class:`Entry`: the model file, a data file at its real shape (inputs by
name, first axis samples except per-call inputs such as a state; ``labels`` only where the
model was trained on real data), the
``--shape`` overrides for generated inputs, and its kind.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLES = 40


@dataclass
class Entry:
    name: str
    kind: str
    model: Path
    data: Path | None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def package_file(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def text_images(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Text-like images (lines of dark glyph blocks on paper), normalized as PaddleOCR
    feeds them: a detector fires and a recogniser is confident on these, unlike on noise."""
    img = np.full((n, h, w), 235.0, np.float32) + rng.normal(0, 6, (n, h, w))
    for i in range(n):
        for _ in range(int(rng.integers(2, 5))):
            y, height = int(rng.integers(0, h - 8)), int(rng.integers(5, max(6, h // 4)))
            x = int(rng.integers(0, w // 4))
            while x < w - 4:
                glyph = int(rng.integers(2, 7))
                img[i, y : y + height, x : x + glyph] = rng.uniform(10, 60)
                x += glyph + int(rng.integers(1, 5))
    rgb = np.repeat(img[:, None], 3, axis=1) / 255.0
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return ((rgb - mean) / std).astype(np.float32)


def paddle(out: Path) -> list[Entry]:
    rng = np.random.default_rng(0)
    found = []
    specs = [
        ("paddle-det", "ch_PP-OCRv4_det_infer.onnx", "map (Paddle, Constant weights)", (96, 96)),
        ("paddle-cls", "ch_ppocr_mobile_v2.0_cls_infer.onnx", "classifier (Paddle)", (48, 192)),
        ("paddle-rec", "ch_PP-OCRv4_rec_infer.onnx", "sequence (Paddle, CTC)", (48, 160)),
    ]
    for name, file, kind, (h, w) in specs:
        model = package_file("rapidocr_onnxruntime", "models", file)
        if model is None:
            continue
        data = _save(out / f"{name}.npz", x=text_images(rng, SAMPLES, h, w))
        found.append(Entry(name, kind, model, data, {"x": (1, 3, h, w)}))
    return found


def silero(out: Path) -> list[Entry]:
    """Silero VAD, both ONNX files its package ships (the default one, and the opset-18
    export it offers as ``silero_vad_op18_ifless.onnx``), on 40 chunks at 16 kHz, half
    vowel-like, half noise; the state (zeros: each chunk on its own) and sample rate are
    given once per call."""
    files = [
        ("silero-vad", "silero_vad.onnx", "stateful with If (audio)"),
        ("silero-vad-op18", "silero_vad_op18_ifless.onnx", "stateful, opset 18 export"),
    ]
    chunks = speech_chunks(np.random.default_rng(3), SAMPLES)
    state = np.zeros((2, 1, 128), np.float32)
    found = []
    for name, file, kind in files:
        model = package_file("silero_vad", "data", file)
        if model is not None:
            data = _save(out / f"{name}.npz", input=chunks, state=state, sr=np.array(16000))
            found.append(Entry(name, kind, model, data))
    return found


CHUNK = 64 + 512
"""Silero v5's input: 512 new samples after the previous chunk's last 64, as its
``OnnxWrapper`` feeds it; on 512 samples alone it never fires, even on speech."""


def speech_chunks(rng: np.random.Generator, n: int, rate: int = 16000) -> np.ndarray:
    """``n`` chunks of :data:`CHUNK` samples: even ones vowels (a 90–250 Hz glottal
    sawtooth through three formant resonators, plus noise), odd ones low noise only, so a
    voice activity detector fires on half of them (Silero: ~0.5–0.8 against ~0.02)."""
    t = np.arange(CHUNK) / rate
    out = np.empty((n, CHUNK), np.float32)
    for i in range(n):
        noise = rng.normal(0, 0.003, CHUNK)
        if i % 2:
            out[i] = noise
            continue
        source = (rng.uniform(90, 250) * t + rng.uniform()) % 1.0 * 2 - 1
        for freq, width in ((rng.uniform(300, 800), 80), (rng.uniform(900, 2300), 90), (2600, 120)):
            source = _resonate(source, freq, width, rate)
        out[i] = 0.3 * source / np.abs(source).max() + noise
    return out


def _resonate(x: np.ndarray, freq: float, bandwidth: float, rate: int) -> np.ndarray:
    """``x`` through a two-pole resonator at ``freq`` Hz (a formant of the vocal tract)."""
    r = np.exp(-np.pi * bandwidth / rate)
    a1, a2 = 2 * r * np.cos(2 * np.pi * freq / rate), -r * r
    y = np.zeros(len(x) + 2)
    for k, v in enumerate(x):
        y[k + 2] = (1 - r) * v + a1 * y[k + 1] + a2 * y[k]
    return y[2:]


def _calibrate(module: object, example: object, passes: int = 8) -> None:
    """Running BatchNorm statistics from train-mode passes over ``example``."""
    import torch

    assert isinstance(module, torch.nn.Module)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
            m.reset_running_stats()
    module.train()
    with torch.no_grad():
        for _ in range(passes):
            module(example)
    module.eval()


def _export(module: object, example: dict[str, np.ndarray], path: Path) -> Path:
    import torch

    from edgeship.compress.torch_model import export_onnx

    assert isinstance(module, torch.nn.Module)
    return export_onnx(module, example, path, list(example))


def mobilenet(out: Path) -> list[Entry]:
    import torch

    torch.manual_seed(0)
    x = text_images(np.random.default_rng(1), SAMPLES, 64, 64)
    module = mobilenet_v3_like()
    _calibrate(module, torch.from_numpy(x[:32]))
    model = _export(module, {"input": x}, out / "mobilenet-se.onnx")
    data = _save(out / "mobilenet-se.npz", input=x)
    return [Entry("mobilenet-se", "CNN with SE blocks", model, data)]


def mobilenet_v3_like(classes: int = 10) -> object:
    """Stem, four inverted-residual blocks (two with squeeze-and-excitation, hard-swish),
    a 1×1 head and a classifier: the shape of torchvision's mobilenet_v3_small."""
    from torch import nn

    class SE(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)
            self.relu, self.gate = nn.ReLU(), nn.Hardsigmoid()

        def forward(self, x):  # type: ignore[no-untyped-def]
            return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))

    class Block(nn.Module):
        def __init__(self, cin: int, exp: int, cout: int, stride: int, se: bool) -> None:
            super().__init__()
            act = nn.Hardswish if se else nn.ReLU
            layers = [nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp), act()]
            layers += [nn.Conv2d(exp, exp, 3, stride, 1, groups=exp, bias=False)]
            layers += [nn.BatchNorm2d(exp), act()]
            layers += [SE(exp)] if se else []
            layers += [nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.body, self.skip = nn.Sequential(*layers), stride == 1 and cin == cout

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = self.body(x)
            return x + y if self.skip else y

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.Hardswish(),
        Block(16, 64, 24, 2, False),
        Block(24, 72, 24, 1, False),
        Block(24, 96, 40, 2, True),
        Block(40, 120, 40, 1, True),
        nn.Conv2d(40, 160, 1, bias=False),
        nn.BatchNorm2d(160),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(160, 64),
        nn.Hardswish(),
        nn.Linear(64, classes),
    )


def transformer(out: Path) -> list[Entry]:
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self, vocab: int = 1000, width: int = 64, classes: int = 4) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            layer = nn.TransformerEncoderLayer(width, 4, 128, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(width, classes)

        def forward(self, ids):  # type: ignore[no-untyped-def]
            return self.head(self.encoder(self.embed(ids)).mean(dim=1))

    torch.manual_seed(0)
    encoder = Encoder().eval()
    with torch.no_grad():  # TransformerEncoder clones its layer: give each its own weights
        for p in encoder.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.normal_(p, std=0.02)
    ids = np.random.default_rng(2).integers(0, 1000, (SAMPLES, 16)).astype(np.int64)
    model = _export(encoder, {"ids": ids}, out / "transformer.onnx")
    _seq_dynamic(model, "ids")
    data = _save(out / "transformer.npz", ids=ids)
    return [Entry("transformer", "transformer encoder, int64 ids", model, data)]


def _seq_dynamic(path: Path, name: str) -> None:
    """Mark the token axis dynamic (``seq``), as exported transformers have it."""
    import onnx

    model = onnx.load(str(path))
    for vi in model.graph.input:
        if vi.name == name:
            vi.type.tensor_type.shape.dim[1].dim_param = "seq"
    onnx.save(model, str(path))


def zoo(out: Path) -> list[Entry]:
    """The demo models, trained on real digits (the only entries with labels)."""
    from tools.zoo.build import build_zoo

    manifest = build_zoo()
    data = manifest.path("digits_test.npz")
    return [
        Entry("zoo-cnn", "CNN trained on digits (labels)", manifest.path("cnn.onnx"), data),
        Entry("zoo-cnn.tflite", "TFLite with signature", manifest.path("cnn.tflite"), data),
    ]


def tflite_without_signature(out: Path) -> list[Entry]:
    """The zoo CNN's TFLite file with its SignatureDef removed (as MediaPipe ships models)."""
    from ai_edge_litert.tools import flatbuffer_utils

    from tools.zoo.build import build_zoo

    manifest = build_zoo()
    model = flatbuffer_utils.read_model(str(manifest.path("cnn.tflite")))
    model.signatureDefs = []
    path = out / "nosig.tflite"
    flatbuffer_utils.write_model(model, str(path))
    with np.load(manifest.path("digits_test.npz")) as npz:
        images = npz["input"]
    from ai_edge_litert.interpreter import Interpreter

    name = Interpreter(model_path=str(path)).get_input_details()[0]["name"]
    data = _save(out / "nosig.npz", **{name: images[:200]})
    return [Entry("nosig.tflite", "TFLite without SignatureDef", path, data)]


def tflite_fp16_weights(out: Path) -> list[Entry]:
    """The zoo CNN's TFLite with FLOAT16 weights behind DEQUANTIZE ops (edgeship's
    ``fp16``; the TFLite converter's float16 option and MediaPipe write the same)."""
    from edgeship.compress import QuantizeConfig, quantize
    from tools.zoo.build import build_zoo

    manifest = build_zoo()
    path = out / "fp16w.tflite"
    quantize(manifest.path("cnn.tflite"), QuantizeConfig("fp16"), None, path)
    data = manifest.path("digits_test.npz")
    return [Entry("fp16w.tflite", "TFLite with FP16 weights", path, data)]


def build(out: Path) -> list[Entry]:
    """Every entry whose source is available here (a missing package skips its models)."""
    out.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    makers = (paddle, silero, mobilenet, transformer, zoo, tflite_without_signature)
    for make in (*makers, tflite_fp16_weights):
        entries += make(out)
    return entries
