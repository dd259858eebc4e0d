"""Build the demo model zoo: train, export (ONNX, TFLite, state dict) and verify.

The zoo is the shared fixture for profiling, quantization, pruning, distillation,
conversion and partitioning work, so it must be real (trained, accurate),
reproducible (seeded, deterministic, 1 thread) and cheap to reuse (cached by a
build key, verified by file hashes, written atomically under a file lock).

Usage: ``python tools/zoo/build.py [--out DIR] [--force]`` or
``python -m tools.zoo.build``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from edgeship.core.extras import MissingExtra, import_optional
from edgeship.core.quiet import quiet

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

SCHEMA = "edgeship.zoo/1"
MODEL_NAMES = ("mlp", "cnn")
MIN_ACCURACY = {"mlp": 0.95, "cnn": 0.97}
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
INPUT_SHAPE = ("batch", 1, 8, 8)
NUM_CLASSES = 10
SEED = 0
TEST_FRACTION = 0.2
NUM_THREADS = 1
"""Threads of the build's torch, ONNX Runtime and LiteRT: one. Its models are small, and
with two threads on a 2-core machine busy with anything else each operator waits for the
second thread to be scheduled: a training step took ten times as long as with one."""
OPSET = 17
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
REPO_ROOT = Path(__file__).resolve().parents[2]
_HERE = Path(__file__).resolve().parent
_KEY_SOURCES = ("models.py", "build.py")
_KEY_PACKAGES = ("torch", "onnx", "litert-torch")
_NEEDS = ("torch", "onnx", "sklearn")  # to train and export; litert_torch only for TFLite


@dataclass(frozen=True)
class TrainConfig:
    """Per-model optimiser settings; tuned for a clear margin over MIN_ACCURACY."""

    epochs: int
    lr: float = 1e-3
    batch_size: int = 32


TRAIN_CONFIG = {"mlp": TrainConfig(epochs=30), "cnn": TrainConfig(epochs=8)}


# --------------------------------------------------------------------------- manifest


@dataclass
class FileEntry:
    """One artifact, identified by content so a cache hit can be trusted."""

    name: str
    sha256: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size_bytes": self.size_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileEntry:
        return cls(str(data["name"]), str(data["sha256"]), int(data["size_bytes"]))


@dataclass
class ModelEntry:
    """A trained model, its artifacts and accuracies measured on the exported files."""

    name: str
    parameters: int
    input_name: str
    output_name: str
    input_shape: list[Any]
    files: dict[str, FileEntry]  # kind ("onnx", "tflite", "state_dict") -> file
    accuracy: dict[str, float]  # runtime ("onnxruntime", "litert") -> test accuracy
    train_seconds: float
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameters": self.parameters,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "input_shape": list(self.input_shape),
            "files": {kind: f.to_dict() for kind, f in self.files.items()},
            "accuracy": dict(self.accuracy),
            "train_seconds": self.train_seconds,
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        return cls(
            name=str(data["name"]),
            parameters=int(data["parameters"]),
            input_name=str(data["input_name"]),
            output_name=str(data["output_name"]),
            input_shape=list(data["input_shape"]),
            files={k: FileEntry.from_dict(v) for k, v in data["files"].items()},
            accuracy={k: float(v) for k, v in data["accuracy"].items()},
            train_seconds=float(data["train_seconds"]),
            epochs=int(data["epochs"]),
        )


@dataclass
class Manifest:
    """What a zoo directory holds; written last, so its presence means complete."""

    schema: str
    build_key: str
    models: dict[str, ModelEntry]
    data: dict[str, FileEntry]  # split ("train", "test") -> npz file
    split_sizes: dict[str, int]
    tflite_skipped: str | None  # reason when litert_torch was unavailable, else None
    versions: dict[str, str]
    build_seconds: float
    root: Path | None = field(default=None, compare=False)  # not serialized

    def path(self, name: str) -> Path:
        """Absolute path of an artifact; needs `root` (set by build_zoo/load_manifest)."""
        if self.root is None:
            raise ValueError("manifest has no root directory")
        return self.root / name

    def all_files(self) -> list[FileEntry]:
        return [f for m in self.models.values() for f in m.files.values()] + list(
            self.data.values()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "build_key": self.build_key,
            "models": {name: m.to_dict() for name, m in self.models.items()},
            "data": {split: f.to_dict() for split, f in self.data.items()},
            "split_sizes": dict(self.split_sizes),
            "tflite_skipped": self.tflite_skipped,
            "versions": dict(self.versions),
            "build_seconds": self.build_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path | None = None) -> Manifest:
        return cls(
            schema=str(data["schema"]),
            build_key=str(data["build_key"]),
            models={k: ModelEntry.from_dict(v) for k, v in data["models"].items()},
            data={k: FileEntry.from_dict(v) for k, v in data["data"].items()},
            split_sizes={k: int(v) for k, v in data["split_sizes"].items()},
            tflite_skipped=data.get("tflite_skipped"),
            versions={k: str(v) for k, v in data["versions"].items()},
            build_seconds=float(data["build_seconds"]),
            root=root,
        )


# --------------------------------------------------------------------------- cache


def default_out_dir() -> Path:
    return REPO_ROOT / ".zoo"


def _package_version(dist: str) -> str:
    """Version without importing (litert_torch alone takes seconds to import)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def build_key() -> str:
    """Anything that changes the artifacts must change this key."""
    h = hashlib.sha256(SCHEMA.encode())
    for name in _KEY_SOURCES:
        h.update(name.encode() + b"\0" + (_HERE / name).read_bytes() + b"\0")
    for dist in _KEY_PACKAGES:
        h.update(f"{dist}=={_package_version(dist)}\0".encode())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_entry(path: Path) -> FileEntry:
    return FileEntry(path.name, _sha256(path), path.stat().st_size)


def load_manifest(out_dir: Path) -> Manifest | None:
    """Parse manifest.json, or None when absent or unreadable (treated as 'not built')."""
    try:
        data = json.loads((out_dir / MANIFEST_NAME).read_text())
        return Manifest.from_dict(data, root=out_dir)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _valid_cache(out_dir: Path, key: str) -> Manifest | None:
    """The manifest, if it matches this code/toolchain and every file is intact."""
    manifest = load_manifest(out_dir)
    if manifest is None or manifest.schema != SCHEMA or manifest.build_key != key:
        return None
    for entry in manifest.all_files():
        path = out_dir / entry.name
        if not path.is_file() or path.stat().st_size != entry.size_bytes:
            return None
        if _sha256(path) != entry.sha256:
            return None
    return manifest


@contextlib.contextmanager
def _file_lock(out_dir: Path) -> Iterator[None]:
    """Serialise builders (parallel test sessions) on one output directory."""
    with (out_dir / LOCK_NAME).open("a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; publish it with os.replace only on success."""
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp{final.suffix}")
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_text_atomic(path: Path, text: str) -> None:
    with _atomic_path(path) as tmp:
        tmp.write_text(text)


# --------------------------------------------------------------------------- data


def _load_digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bundled sklearn digits (no download), scaled to [0, 1], stratified 80/20 split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=SEED
    )
    return {"train": (x_tr, y_tr), "test": (x_te, y_te)}


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a digits_*.npz file: (input (N,1,8,8) float32, labels (N,) int64)."""
    import numpy as np

    with np.load(path) as npz:
        return npz["input"], npz["labels"]


def _save_split(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    import numpy as np

    with _atomic_path(path) as tmp:
        np.savez(tmp, input=x, labels=y)


# --------------------------------------------------------------------------- train


@contextlib.contextmanager
def _torch_repro() -> Iterator[None]:
    """Deterministic single-thread torch for the build, restoring the caller's settings."""
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


def _train(name: str, x: np.ndarray, y: np.ndarray, log: _Progress) -> nn.Module:
    """Seeded Adam minibatch training; returns the model in eval mode. A line per epoch:
    its mean loss and the training rows' accuracy, counted from the batches as they went
    (so it costs nothing and leaves the test split to the exported files' scores)."""
    import torch
    from torch.nn import functional

    from tools.zoo import models

    cfg = TRAIN_CONFIG[name]
    torch.manual_seed(SEED)
    model = models.FACTORIES[name]()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(xt), generator=gen)
        summed, right = 0.0, 0
        for start in range(0, len(xt), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            logits = model(xt[idx])
            loss = functional.cross_entropy(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            summed += loss.detach().item() * len(idx)
            right += int((logits.argmax(1) == yt[idx]).sum())
        log.line(
            f"{name} epoch {epoch + 1}/{cfg.epochs}: loss {summed / len(xt):.4f}, "
            f"training accuracy {right / len(xt):.2%}"
        )
    return model.eval()


# --------------------------------------------------------------------------- export


def _export_onnx(model: nn.Module, example: np.ndarray, path: Path) -> None:
    """TorchScript exporter: mature, folds BN, dynamic batch axis."""
    import onnx
    import torch

    with _atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.from_numpy(example),),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        onnx.checker.check_model(str(tmp), full_check=True)


def _import_litert_torch() -> tuple[Any, str | None]:
    """(module, None) or (None, reason): without litert-torch the zoo is built without its
    TFLite models, and the summary says so and what to install."""
    try:
        return import_optional("litert_torch", "TFLite export of the zoo", extra="zoo"), None
    except MissingExtra as exc:
        return None, str(exc)


def _export_tflite(litert_torch: Any, model: nn.Module, example: np.ndarray, path: Path) -> None:
    """Static batch-1 flatbuffer: what a LiteRT edge runtime would load.

    Converted through keyword input and dict output, so its signature names the tensors
    ``input`` and ``logits`` like the ONNX export: one data file feeds both.
    """
    import torch

    from tools.zoo.models import NamedIO

    with _atomic_path(path) as tmp, quiet():
        sample = {"input": torch.from_numpy(example[:1])}
        edge_model = litert_torch.convert(NamedIO(model).eval(), (), sample_kwargs=sample)
        edge_model.export(str(tmp))


def _export_state_dict(model: nn.Module, path: Path) -> None:
    """Save via a buffer: torch.save names zip entries after the (temp) file, breaking
    byte-for-byte reproducibility."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    with _atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------- evaluate


def onnx_logits(path: Path, x: np.ndarray, threads: int = NUM_THREADS) -> np.ndarray:
    """Run an exported ONNX model on a whole batch with onnxruntime (CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def tflite_logits(path: Path, x: np.ndarray, threads: int = NUM_THREADS) -> np.ndarray:
    """Run a batch-1 .tflite over x one sample at a time with the LiteRT interpreter."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    rows = []
    for i in range(len(x)):
        interp.set_tensor(inp, x[i : i + 1])
        interp.invoke()
        rows.append(interp.get_tensor(out)[0].copy())
    return np.stack(rows)


def _check_accuracy(name: str, runtime: str, acc: float) -> None:
    """Fail the build rather than ship a zoo that later benchmarks can't trust."""
    if acc < MIN_ACCURACY[name]:
        raise RuntimeError(
            f"{name} ({runtime}) test accuracy {acc:.4f} < required {MIN_ACCURACY[name]}"
        )


# --------------------------------------------------------------------------- build


def _build_model(
    name: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    out_dir: Path,
    litert_torch: Any,
    log: _Progress,
) -> ModelEntry:
    """Train one model, export every format, and score each exported file."""
    x_tr, y_tr = splits["train"]
    x_te, y_te = splits["test"]
    t0 = time.perf_counter()
    log.step(f"training {name} ({TRAIN_CONFIG[name].epochs} epochs)")
    model = _train(name, x_tr, y_tr, log)
    train_seconds = time.perf_counter() - t0

    paths = {"onnx": out_dir / f"{name}.onnx", "state_dict": out_dir / f"{name}.pt"}
    accuracy = {}
    with _exporting(log, paths["onnx"]) as scored:
        _export_onnx(model, x_te[:2], paths["onnx"])
        _export_state_dict(model, paths["state_dict"])
        accuracy["onnxruntime"] = scored("onnxruntime", onnx_logits(paths["onnx"], x_te), y_te)
    if litert_torch is not None:
        paths["tflite"] = out_dir / f"{name}.tflite"
        with _exporting(log, paths["tflite"]) as scored:
            _export_tflite(litert_torch, model, x_te, paths["tflite"])
            accuracy["litert"] = scored("litert", tflite_logits(paths["tflite"], x_te), y_te)
    for runtime, acc in accuracy.items():
        _check_accuracy(name, runtime, acc)

    return ModelEntry(
        name=name,
        parameters=sum(p.numel() for p in model.parameters()),
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        input_shape=list(INPUT_SHAPE),
        files={kind: _file_entry(p) for kind, p in paths.items()},
        accuracy=accuracy,
        train_seconds=round(train_seconds, 3),
        epochs=TRAIN_CONFIG[name].epochs,
    )


@contextlib.contextmanager
def _exporting(log: _Progress, path: Path) -> Iterator[Callable[[str, Any, Any], float]]:
    """A step exporting ``path``; the block scores the file with the function it gets
    (runtime, logits, labels → accuracy), and its line says the score and the time."""
    t0 = time.perf_counter()
    log.step(f"exporting {path.name}")
    scores: list[str] = []

    def scored(runtime: str, logits: np.ndarray, labels: np.ndarray) -> float:
        acc = _accuracy(logits, labels)
        scores.append(f"{runtime} test accuracy {acc:.2%}")
        return acc

    yield scored
    log.line(f"exported {path.name}: {', '.join(scores)} ({time.perf_counter() - t0:.1f} s)")


HEARTBEAT_S = 10.0
"""The longest the build stays silent: a step still running says so this often."""


class _Progress:
    """The build's lines on stderr, ``zoo: ...``: one as each step starts (:meth:`step`),
    others as work within it finishes (:meth:`line`: an epoch, an export), and, when a step
    has printed nothing for :data:`HEARTBEAT_S`, ``zoo: still <step> (N s)`` from a thread
    of its own, since one call (an import, a TFLite conversion) can take half a minute.

    It writes to its own copy of stderr's descriptor, taken when it opens: the converters'
    chatter is swallowed by redirecting descriptor 2 (:func:`quiet`), the progress is not.
    """

    def __init__(self, stream: IO[str] | None = None, heartbeat_s: float = HEARTBEAT_S) -> None:
        self._given = stream
        self.heartbeat_s = heartbeat_s
        self._out: IO[str] = sys.stderr
        self._own = False
        self._step = ""
        self._step_at = self._line_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="zoo-progress", daemon=True)

    def __enter__(self) -> _Progress:
        self._out = self._given or _own_stderr() or sys.stderr
        self._own = self._given is None and self._out is not sys.stderr
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._own:
            self._out.close()

    def step(self, text: str) -> None:
        """``zoo: text...``, the step the heartbeat names until the next one starts."""
        with self._lock:
            self._step, self._step_at = text, time.monotonic()
            self._write(f"{text}...")

    def line(self, text: str) -> None:
        """``zoo: text``: a result within the current step."""
        with self._lock:
            self._write(text)

    def _write(self, text: str) -> None:
        self._out.write(f"zoo: {text}\n")
        self._out.flush()
        self._line_at = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat_s)):
            with self._lock:
                now = time.monotonic()
                if self._step and now - self._line_at >= self.heartbeat_s:
                    self._write(f"still {self._step} ({now - self._step_at:.0f} s)")


def _own_stderr() -> IO[str] | None:
    """A file on a duplicate of stderr's descriptor, or None when stderr has none."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace")


def _versions() -> dict[str, str]:
    dists = ("torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert", "scikit-learn")
    return {d: _package_version(d) for d in dists}


def _clean_stale(out_dir: Path) -> None:
    """Drop the old manifest first (a half-rebuilt dir must read as incomplete) and temp files."""
    with contextlib.suppress(FileNotFoundError):
        (out_dir / MANIFEST_NAME).unlink()
    for tmp in out_dir.glob(".*.tmp*"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _build(out_dir: Path, key: str) -> Manifest:
    """Full build; caller holds the lock."""
    t0 = time.perf_counter()
    with _Progress() as log:
        log.step("importing torch, ONNX and scikit-learn")
        for module in _NEEDS:
            import_optional(module, "building the zoo", extra="zoo")
        _clean_stale(out_dir)
        splits = _load_digits()
        data = {}
        for split, (x, y) in splits.items():
            path = out_dir / f"digits_{split}.npz"
            _save_split(path, x, y)
            data[split] = _file_entry(path)

        log.step("importing litert-torch (with JAX) for the TFLite export")
        litert_torch, tflite_skipped = _import_litert_torch()
        with _torch_repro():
            models = {
                name: _build_model(name, splits, out_dir, litert_torch, log) for name in MODEL_NAMES
            }

    manifest = Manifest(
        schema=SCHEMA,
        build_key=key,
        models=models,
        data=data,
        split_sizes={split: len(y) for split, (_, y) in splits.items()},
        tflite_skipped=tflite_skipped,
        versions=_versions(),
        build_seconds=round(time.perf_counter() - t0, 3),
        root=out_dir,
    )
    _write_text_atomic(out_dir / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest


def build_zoo(out_dir: Path | None = None, force: bool = False) -> Manifest:
    """Return a complete, verified zoo in `out_dir`, building it only when needed."""
    return _ensure_zoo(out_dir, force)[0]


def _ensure_zoo(out_dir: Path | None, force: bool) -> tuple[Manifest, bool]:
    """build_zoo, also saying whether this call rebuilt (for the CLI summary)."""
    out_dir = Path(out_dir if out_dir is not None else default_out_dir()).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    gitignore = out_dir / ".gitignore"
    if not gitignore.exists():
        _write_text_atomic(gitignore, "*\n")
    key = build_key()
    if not force and (manifest := _valid_cache(out_dir, key)) is not None:
        return manifest, False
    with _file_lock(out_dir):
        # Another process may have finished the build while we waited for the lock.
        if not force and (manifest := _valid_cache(out_dir, key)) is not None:
            return manifest, False
        return _build(out_dir, key), True


# --------------------------------------------------------------------------- cli


def _summary(manifest: Manifest, seconds: float, rebuilt: bool) -> str:
    lines = [f"zoo at {manifest.root} ({'built' if rebuilt else 'cache hit'} in {seconds:.1f}s)"]
    for m in manifest.models.values():
        accs = ", ".join(f"{rt}={acc:.4f}" for rt, acc in m.accuracy.items())
        files = ", ".join(f.name for f in m.files.values())
        lines.append(f"  {m.name}: {m.parameters} params, {accs}; {files}")
    if manifest.tflite_skipped:
        lines.append(f"  tflite skipped: {manifest.tflite_skipped}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out_dir(), help="output directory")
    parser.add_argument("--force", action="store_true", help="rebuild even on a cache hit")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        manifest, rebuilt = _ensure_zoo(args.out, force=args.force)
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    print(_summary(manifest, seconds, rebuilt))
    return 0


if __name__ == "__main__":
    # Script mode (`python tools/zoo/build.py`) lacks the repo root on sys.path.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
