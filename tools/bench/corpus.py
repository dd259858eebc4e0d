"""The real-model corpus of ``real_models.py``: models nobody here trained, no hub download.

Two sources, both offline:

* model files that pip packages ship inside their wheels (the ``corpus`` extra):
  ``rapidocr-onnxruntime`` carries PaddleOCR's detector, direction classifier and
  recogniser as Paddle2ONNX exports (weights in ``Constant`` nodes, BatchNorm variances of
  ~1e8, ``Shape``/``Resize`` arithmetic, dynamic H/W), ``silero-vad`` its voice activity
  detector in two exports (state inputs, a scalar sample rate, an ``If`` over two
  sub-models; its data holds the state and rate once, as per-call inputs);
* architectures built here: a MobileNetV3-like CNN with squeeze-and-excitation blocks
  trained briefly on the digits, a transformer encoder over int64 token ids
  (``torch.nn.TransformerEncoder``, random weights), a TFLite model stripped of its
  SignatureDef and one with FLOAT16 weights behind DEQUANTIZE ops.

The images are printed words (Pillow's built-in font), on which PaddleOCR's models are
sure of themselves as on real text; the direction classifier's strips are half upside
down, which gives it real labels.

Each entry is a :class:`Entry`: the model file, a data file at its real shape (inputs by
name, first axis samples except per-call inputs such as a state; ``labels`` where the
truth is known: the digits, the strips' orientation), the
``--shape`` overrides for generated inputs, and its kind.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.bench._detect import Detector

SAMPLES = 40


@dataclass
class Entry:
    """A corpus model: its file, its data, ``--shape`` overrides, and what its outputs
    mean to the benchmark's judge (:mod:`_judge` specs by output name; an output not
    named is guessed) and, for a detector, how to decode it (:mod:`_detect`)."""

    name: str
    kind: str
    model: Path
    data: Path | None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    detector: Detector | None = None


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


WORDS = (
    "edge",
    "board",
    "model",
    "deploy",
    "latency",
    "memory",
    "runtime",
    "profile",
    "quantize",
    "prune",
    "tensor",
    "kernel",
    "shard",
    "pipeline",
    "device",
    "signal",
    "voice",
    "camera",
    "sensor",
    "python",
    "linux",
    "arm64",
    "jetson",
    "2026",
    "frame",
)


def text_images(
    rng: np.random.Generator, n: int, h: int, w: int, upside_down: np.ndarray | None = None
) -> np.ndarray:
    """Grey ``(n, h, w)`` images of printed words (Pillow's built-in font, FreeType): one
    line across a strip when ``h < 80``, else 2-4 lines on a page; where ``upside_down``
    is true, the image turned by 180°. PaddleOCR's models are sure on these (the direction
    classifier gives 1.00/0.00 either way up), unlike on blocks or noise, where an
    arg-max over its two classes is a coin toss."""
    from PIL import Image, ImageDraw, ImageFont

    images = []
    for i in range(n):
        page = Image.new("L", (w, h), int(rng.integers(215, 250)))
        draw = ImageDraw.Draw(page)
        strip = h < 80
        size = int(h * rng.uniform(0.55, 0.75)) if strip else int(rng.integers(14, 22))
        font = ImageFont.load_default(size=size)
        lines = 1 if strip else int(rng.integers(2, 5))
        for k in range(lines):
            y = (h - size) // 2 if strip else 6 + k * (h - 12) // lines
            words = " ".join(str(wd) for wd in rng.choice(WORDS, 4))
            draw.text(
                (int(rng.integers(2, 10)), y), words, font=font, fill=int(rng.integers(10, 60))
            )
        if upside_down is not None and upside_down[i]:
            page = page.rotate(180)
        images.append(np.asarray(page, np.float32) + rng.normal(0, 4, (h, w)))
    return np.clip(np.stack(images), 0, 255).astype(np.float32)


def paddle_input(grey: np.ndarray, imagenet: bool) -> np.ndarray:
    """Grey images as PaddleOCR feeds its models: RGB scaled to [0, 1], then ImageNet's
    mean/std (detector) or to [-1, 1] (classifier, recogniser)."""
    rgb = np.repeat(grey[:, None], 3, axis=1) / 255.0
    if not imagenet:
        return ((rgb - 0.5) / 0.5).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]
    return ((rgb - mean) / std).astype(np.float32)


def paddle(out: Path) -> list[Entry]:
    """PaddleOCR's three models on printed words: pages for the detector, strips for the
    recogniser, strips half of them upside down for the direction classifier (labels:
    0 upright, 1 turned by 180°, its two classes)."""
    rng = np.random.default_rng(0)
    found = []
    specs = [
        ("paddle-det", "ch_PP-OCRv4_det_infer.onnx", "text map (Paddle)", (96, 96), "mask@0.3"),
        (
            "paddle-cls",
            "ch_ppocr_mobile_v2.0_cls_infer.onnx",
            "classifier (Paddle)",
            (48, 192),
            "scores",
        ),
        ("paddle-rec", "ch_PP-OCRv4_rec_infer.onnx", "sequence (Paddle, CTC)", (48, 160), "ctc:0"),
    ]
    for name, file, kind, (h, w), spec in specs:
        model = package_file("rapidocr_onnxruntime", "models", file)
        if model is None:
            continue
        if name == "paddle-cls":
            labels = np.arange(SAMPLES) % 2
            x = paddle_input(text_images(rng, SAMPLES, h, w, labels.astype(bool)), False)
            data = _save(out / f"{name}.npz", x=x, labels=labels.astype(np.int64))
        else:
            x = paddle_input(text_images(rng, SAMPLES, h, w), name == "paddle-det")
            data = _save(out / f"{name}.npz", x=x)
        outputs = {_first_output(model): spec}
        found.append(Entry(name, kind, model, data, {"x": (1, 3, h, w)}, outputs))
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
            found.append(Entry(name, kind, model, data, outputs=SILERO_OUTPUTS))
    return found


SILERO_OUTPUTS = {"output": "flag", "stateN": "state", "hn": "state", "cn": "state"}
"""Silero's speech probability (a flag at 0.5) and its recurrent state."""

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


def _first_output(model: Path) -> str:
    import onnx

    return str(onnx.load(str(model), load_external_data=False).graph.output[0].name)


def _export(module: object, example: dict[str, np.ndarray], path: Path) -> Path:
    import torch

    from edgeship.compress.training.torch_model import export_onnx

    assert isinstance(module, torch.nn.Module)
    return export_onnx(module, example, path, list(example))


def mobilenet(out: Path) -> list[Entry]:
    """The MobileNetV3-like CNN trained briefly on the digits (8×8 scaled up to 32×32 RGB):
    a classifier sure of its answers, as a trained one is (with random weights its ten
    logits lay within 0.03 of each other and any rounding flipped its arg-max)."""
    import torch
    from torch.nn import functional

    from tools.zoo.build import build_zoo, load_split

    manifest = build_zoo()
    x_train, y_train = load_split(manifest.path("digits_train.npz"))
    x_test, y_test = load_split(manifest.path("digits_test.npz"))
    torch.manual_seed(0)
    module = mobilenet_v3_like()
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(_rgb32(x_train)), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(0)
    module.train()
    for _ in range(MOBILENET_EPOCHS):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = order[start : start + 64]
            loss = functional.cross_entropy(module(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    module.eval()
    x = _rgb32(x_test)
    model = _export(module, {"input": x[:SAMPLES]}, out / "mobilenet-se.onnx")
    data = _save(out / "mobilenet-se.npz", input=x, labels=y_test)
    return [Entry("mobilenet-se", "CNN with SE blocks (digits)", model, data)]


MOBILENET_EPOCHS = 20


def _rgb32(digits: np.ndarray) -> np.ndarray:
    """``(N, 1, 8, 8)`` digits as ``(N, 3, 32, 32)``: each pixel 4×4, the grey in RGB."""
    big = digits.repeat(4, axis=2).repeat(4, axis=3)
    return np.repeat(big, 3, axis=1).astype(np.float32)


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


MADE_BY = {
    "paddle": ("paddle-det", "paddle-cls", "paddle-rec"),
    "silero": ("silero-vad", "silero-vad-op18"),
    "mobilenet": ("mobilenet-se", "mobilenet-fp16w"),
    "transformer": ("transformer",),
    "zoo": ("zoo-cnn", "zoo-cnn.tflite"),
    "tflite_without_signature": ("nosig.tflite",),
    "tflite_fp16_weights": ("fp16w.tflite",),
}
"""The entries each maker of this module makes (``mobilenet``'s FP16 copy is made by
:mod:`corpus_field` from it); :func:`build` skips the makers of no wanted entry."""


def build(out: Path, only: tuple[str, ...] = ()) -> list[Entry]:
    """Every entry whose source is available here (a missing package skips its models),
    or those of ``only``: the makers of none of them are skipped (their entries may come
    along)."""
    from tools.bench import corpus_field

    out.mkdir(parents=True, exist_ok=True)
    makers = (paddle, silero, mobilenet, transformer, zoo, tflite_without_signature)
    made_by = {**MADE_BY, **corpus_field.MADE_BY}
    entries: list[Entry] = []
    for make in (*makers, tflite_fp16_weights, *corpus_field.MAKERS):
        if not only or set(made_by[make.__name__]) & set(only):
            entries += make(out)
    return entries
