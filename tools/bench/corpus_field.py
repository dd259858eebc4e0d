"""Field models of the real-model corpus (:mod:`corpus`): model files that pip packages
ship in their wheels, each with data at its real shape and what its outputs mean.

Nothing here imports those packages: the files are found with ``find_spec`` (a missing
package skips its models), so they can be installed without their dependencies::

    pip install --no-deps mediapipe==0.10.21 openwakeword==0.4.0 nudenet magika

(MediaPipe's legacy solution models and openWakeWord's bundled models left the wheels in
later versions.) The models:

* NudeNet's ``320n.onnx``: a YOLOv8n detector, one packed head ``[1, 4 + 18, 2100]``;
* MediaPipe's TFLite models (FLOAT16 weights behind DEQUANTIZE, no SignatureDef): the
  palm and short-range face detectors (SSD-style: raw boxes ``[1, N, 4 + 2K]`` and score
  logits ``[1, N, 1]`` apart, over fixed anchors), the hand-landmark model (landmarks,
  presence, handedness, world landmarks), the face-landmark model (a face flag logit),
  the iris model (fp32) and the selfie segmenter;
* openWakeWord's audio front-end (an STFT as Conv, a mel matrix, log), its embedding
  model and its ``alexa`` classifier (fixed batch 1), fed in a chain from synthetic
  vowels as openWakeWord feeds them;
* Magika's file-type classifier (int32 byte tokens, 214 classes) on files of this
  Python installation;
* Silero's LSTM sequence export (``h``/``c`` state) and its fixed-batch-1 export;
* the corpus's MobileNet stored with FP16 weights (edgeship's ``fp16``), as models ship.

Images are crops of scikit-learn's two sample photographs (a temple, a flower).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.bench._detect import Detector, ssd_anchors
from tools.bench.corpus import (
    SAMPLES,
    SILERO_OUTPUTS,
    Entry,
    _save,
    package_file,
    speech_chunks,
)

__all__ = ["MADE_BY", "MAKERS", "audio_clips", "photo_crops"]


def photo_crops(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """``(n, h, w, 3)`` RGB in [0, 1]: random crops (a third to all of the shorter side)
    of scikit-learn's sample photographs, resized."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    out = np.empty((n, h, w, 3), np.float32)
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(min(photo.shape[:2]) * rng.uniform(0.33, 1.0))
        y = int(rng.integers(0, photo.shape[0] - side + 1))
        x = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side]).resize(
            (w, h), Image.Resampling.BILINEAR
        )
        out[i] = np.asarray(crop, np.float32) / 255.0
    return out


def nudenet(out: Path) -> list[Entry]:
    model = package_file("nudenet", "320n.onnx")
    if model is None:
        return []
    x = photo_crops(np.random.default_rng(10), SAMPLES, 320, 320).transpose(0, 3, 1, 2)
    data = _save(out / "yolov8n-det.npz", images=np.ascontiguousarray(x))
    detector = Detector("yolo", "output0", size=(320, 320), threshold=0.25)
    return [
        Entry(
            "yolov8n-det",
            "detector, packed head [1, 4+18, 2100]",
            model,
            data,
            {"images": (1, 3, 320, 320)},
            {"output0": "packed:4"},
            detector,
        )
    ]


MEDIAPIPE = (  # name, file, kind, input size, [-1, 1] input, outputs
    (
        "mp-palm-det",
        ("palm_detection", "palm_detection_lite.tflite"),
        "detector, SSD boxes + scores",
        (192, 192),
        True,
        {"Identity": "boxes", "Identity_1": "flag:logit"},
    ),
    (
        "mp-face-det",
        ("face_detection", "face_detection_short_range.tflite"),
        "detector, SSD boxes + scores",
        (128, 128),
        True,
        {"regressors": "boxes", "classificators": "flag:logit"},
    ),
    (
        "mp-hand-landmark",
        ("hand_landmark", "hand_landmark_lite.tflite"),
        "landmarks + presence + handedness",
        (224, 224),
        False,
        {
            "Identity": "landmarks:3",
            "Identity_1": "flag",
            "Identity_2": "flag",
            "Identity_3": "landmarks:3",
        },
    ),
    (
        "mp-face-landmark",
        ("face_landmark", "face_landmark.tflite"),
        "landmarks + face flag",
        (192, 192),
        False,
        {"conv2d_21": "landmarks:3", "conv2d_31": "flag:logit"},
    ),
    (
        "mp-iris",
        ("iris_landmark", "iris_landmark.tflite"),
        "landmarks, two heads (fp32)",
        (64, 64),
        False,
        {"output_eyes_contours_and_brows": "landmarks:3", "output_iris": "landmarks:3"},
    ),
    (
        "mp-selfie-seg",
        ("selfie_segmentation", "selfie_segmentation.tflite"),
        "segmenter",
        (256, 256),
        False,
        {"activation_10": "mask@0.5"},
    ),
)
SSD = {  # MediaPipe's anchor layouts: strides, anchors per cell
    "mp-palm-det": ((8, 16, 16, 16), (2, 2, 2, 2)),
    "mp-face-det": ((8, 16, 16, 16), (2, 2, 2, 2)),
}


def mediapipe(out: Path) -> list[Entry]:
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(11)
    found = []
    for name, (folder, file), kind, size, signed, outputs in MEDIAPIPE:
        model = package_file("mediapipe", "modules", folder, file)
        if model is None:
            continue
        x = photo_crops(rng, SAMPLES, *size)
        x = x * 2 - 1 if signed else x
        input_name = Interpreter(model_path=str(model)).get_input_details()[0]["name"]
        data = _save(out / f"{name}.npz", **{input_name: x})
        detector = None
        if name in SSD:
            boxes, scores = outputs
            anchors = ssd_anchors(size, *SSD[name])
            detector = Detector("ssd", boxes, scores, size, anchors, threshold=0.5)
        found.append(Entry(name, kind, model, data, outputs=dict(outputs), detector=detector))
    return found


RATE = 16000
CLIP = 2 * RATE
"""openWakeWord's classifiers read 16 embeddings, each of 76 mel frames 8 apart (10 ms a
frame): 196 frames, about 2 s of audio."""


def audio_clips(rng: np.random.Generator, n: int, length: int = CLIP) -> np.ndarray:
    """``(n, length)`` audio at int16 scale (openWakeWord's input): vowels and silences of
    one chunk each, in random order."""
    chunks = speech_chunks(rng, 2 * (length // 576 + 1))
    out = np.empty((n, length), np.float32)
    for i in range(n):
        order = rng.permutation(len(chunks))
        out[i] = np.concatenate(chunks[order])[:length] * 32767
    return out


def openwakeword(out: Path) -> list[Entry]:
    import onnxruntime as ort

    files = {
        k: package_file("openwakeword", "resources", "models", f"{k}.onnx")
        for k in ("melspectrogram", "embedding_model", "alexa_v0.1")
    }
    if any(f is None for f in files.values()):
        return []
    mel_file, emb_file, alexa_file = (Path(str(f)) for f in files.values())
    clips = audio_clips(np.random.default_rng(12), SAMPLES)
    mel = ort.InferenceSession(str(mel_file), providers=["CPUExecutionProvider"])
    emb = ort.InferenceSession(str(emb_file), providers=["CPUExecutionProvider"])
    frames = [mel.run(None, {"input": c[None]})[0][0, 0] / 10 + 2 for c in clips]  # as openWakeWord
    windows = np.stack(
        [[f[s : s + 76] for s in range(0, 8 * 16, 8)] for f in frames]
    )  # (n, 16, 76, 32)
    flat = windows.reshape(-1, 76, 32, 1).astype(np.float32)
    embeddings = emb.run(None, {"input_1": flat})[0].reshape(SAMPLES, 16, 96)
    pick = np.random.default_rng(13).integers(0, 16, SAMPLES)
    return [
        Entry(
            "oww-melspec",
            "audio front-end (STFT as Conv, mel, log)",
            mel_file,
            _save(out / "oww-melspec.npz", input=clips[:, :RATE]),
            outputs={"output": "map"},
        ),
        Entry(
            "oww-embedding",
            "embedding (speech features)",
            emb_file,
            _save(
                out / "oww-embedding.npz",
                input_1=windows[np.arange(SAMPLES), pick][..., None].astype(np.float32),
            ),
            outputs={"conv2d_19": "embedding"},
        ),
        Entry(
            "oww-alexa",
            "wake-word classifier, fixed batch 1",
            alexa_file,
            _save(out / "oww-alexa.npz", **{"onnx::Flatten_0": embeddings.astype(np.float32)}),
            outputs={"13": "flag"},
        ),
    ]


def magika(out: Path) -> list[Entry]:
    """Magika's model on the first and last 1024 bytes (whitespace stripped, padded with
    token 256) of 40 files of this Python installation, of many types."""
    import json
    import sys

    model = package_file("magika", "models", "standard_v3_3", "model.onnx")
    if model is None:
        return []
    config = json.loads((model.parent / "config.min.json").read_text())
    beg, end, pad = config["beg_size"], config["end_size"], config["padding_token"]
    tokens = np.array(
        [_magika_tokens(p.read_bytes(), beg, end, pad) for p in _sample_files(Path(sys.prefix))],
        np.int32,
    )
    data = _save(out / "magika.npz", bytes=tokens)
    return [
        Entry(
            "magika",
            "file-type classifier, int32 tokens",
            model,
            data,
            outputs={"target_label": "scores"},
        )
    ]


def _magika_tokens(content: bytes, beg: int, end: int, pad: int) -> list[int]:
    head, tail = content.lstrip()[:beg], content.rstrip()[-end:]
    return [*head, *[pad] * (beg - len(head)), *[pad] * (end - len(tail)), *tail]


SUFFIXES = (
    ".py",
    ".so",
    ".json",
    ".txt",
    ".pyi",
    ".typed",
    ".cfg",
    ".toml",
    ".h",
    ".png",
    ".md",
    ".html",
    ".css",
    ".js",
    ".csv",
    ".xml",
    ".jpg",
    ".ttf",
    ".pem",
    ".c",
)


def _sample_files(root: Path) -> list[Path]:
    """Two files of each of :data:`SUFFIXES` under ``root`` (the first found in sorted
    order, over 64 bytes), then others to :data:`SAMPLES`."""
    picked: list[Path] = []
    by_suffix: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        if (
            path.suffix in SUFFIXES
            and by_suffix.get(path.suffix, 0) < 2
            and path.is_file()
            and path.stat().st_size > 64
        ):
            by_suffix[path.suffix] = by_suffix.get(path.suffix, 0) + 1
            picked.append(path)
        if len(picked) == SAMPLES:
            break
    return picked


def silero_variants(out: Path) -> list[Entry]:
    """Silero's LSTM sequence export (``h``/``c`` state in and out, no ``If``) and its
    fixed-batch-1 export (``[1, 576]``), on the corpus's vowel and noise chunks."""
    chunks = speech_chunks(np.random.default_rng(14), SAMPLES)
    found = []
    seq = package_file("silero_vad", "data", "silero_vad_16k_sequence.onnx")
    if seq is not None:
        zeros = np.zeros((1, 1, 128), np.float32)
        data = _save(out / "silero-lstm.npz", input=chunks, h=zeros, c=zeros)
        outputs = {"speech_probs": "flag", **SILERO_OUTPUTS}
        found.append(
            Entry("silero-lstm", "stateful LSTM, h/c in and out", seq, data, outputs=outputs)
        )
    fixed = package_file("silero_vad", "data", "silero_vad_openvino_16k.onnx")
    if fixed is not None:
        data = _save(out / "silero-b1.npz", input=chunks, state=np.zeros((2, 1, 128), np.float32))
        found.append(
            Entry("silero-b1", "stateful, fixed batch 1", fixed, data, outputs=SILERO_OUTPUTS)
        )
    return found


def onnx_fp16_weights(out: Path) -> list[Entry]:
    """The corpus's MobileNet with FLOAT16 weights (float32 inputs and outputs), written
    by edgeship's ``fp16`` as such files ship."""
    from edgeship.compress import QuantizeConfig, quantize

    base = out / "mobilenet-se.onnx"
    if not base.is_file():
        return []
    path = out / "mobilenet-fp16w.onnx"
    quantize(base, QuantizeConfig("fp16"), None, path)
    return [Entry("mobilenet-fp16w", "ONNX with FP16 weights", path, out / "mobilenet-se.npz")]


MAKERS = (nudenet, mediapipe, openwakeword, magika, silero_variants, onnx_fp16_weights)
MADE_BY = {
    "nudenet": ("yolov8n-det",),
    "mediapipe": tuple(m[0] for m in MEDIAPIPE),
    "openwakeword": ("oww-melspec", "oww-embedding", "oww-alexa"),
    "magika": ("magika",),
    "silero_variants": ("silero-lstm", "silero-b1"),
    "onnx_fp16_weights": ("mobilenet-fp16w",),
}
"""The entries each maker makes (see ``corpus.MADE_BY``)."""
