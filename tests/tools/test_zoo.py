"""Tests for the demo model zoo builder (tools/zoo).

The zoo under test is the one every other test uses (``<repo>/.zoo``, built once and
cached by its build key). The corrupted-file test builds a copy from scratch through the
CLI and checks it is byte-identical: the one whole build here, in the end-to-end tier
(``pytest -m e2e``, which .ci/run runs after the fast tier).
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) omits the cwd
    sys.path.insert(0, str(REPO_ROOT))

from tools.zoo import build as zoo  # noqa: E402
from tools.zoo import models  # noqa: E402

HAS_LITERT_TORCH = importlib.util.find_spec("litert_torch") is not None
needs_tflite = pytest.mark.skipif(not HAS_LITERT_TORCH, reason="litert_torch not installed")
# Written out, not read from zoo.MIN_ACCURACY, so lowering the bar in the code fails here.
MIN_ACCURACY = {"mlp": 0.95, "cnn": 0.97}
NAMES = ["mlp", "cnn"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest() -> zoo.Manifest:
    return zoo.build_zoo()


@pytest.fixture(scope="module")
def zoo_dir(manifest: zoo.Manifest) -> Path:
    assert manifest.root is not None
    return manifest.root


@pytest.fixture(scope="module")
def test_split(manifest: zoo.Manifest) -> tuple[np.ndarray, np.ndarray]:
    return zoo.load_split(manifest.path("digits_test.npz"))


def _torch_logits(manifest: zoo.Manifest, name: str, x: np.ndarray) -> np.ndarray:
    """Reference output: the factory architecture with the saved state dict."""
    import torch

    model = models.FACTORIES[name]()
    state = torch.load(manifest.path(f"{name}.pt"), weights_only=True)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _ort_session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _tflite_logits(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert list(inp["shape"]) == [1, 1, 8, 8]
    rows = []
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i : i + 1])
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0].copy())
    return np.stack(rows)


def _hashes(manifest: zoo.Manifest) -> dict[str, str]:
    return {f.name: f.sha256 for f in manifest.all_files()}


# --------------------------------------------------------------------------- contents


def test_manifest_describes_complete_zoo(manifest: zoo.Manifest, zoo_dir: Path) -> None:
    assert manifest.schema == "edgeship.zoo/1"
    assert manifest.build_key == zoo.build_key()
    assert set(manifest.models) == set(NAMES)
    for entry in manifest.all_files():
        path = zoo_dir / entry.name
        assert path.stat().st_size == entry.size_bytes
        assert zoo._sha256(path) == entry.sha256
    expected_kinds = {"onnx", "state_dict"} | ({"tflite"} if HAS_LITERT_TORCH else set())
    for m in manifest.models.values():
        assert set(m.files) == expected_kinds
        assert (m.input_name, m.output_name) == ("input", "logits")
        assert m.parameters > 0 and m.train_seconds > 0
    assert (manifest.tflite_skipped is None) == HAS_LITERT_TORCH


def test_manifest_round_trips(manifest: zoo.Manifest, zoo_dir: Path) -> None:
    again = zoo.Manifest.from_dict(manifest.to_dict(), root=zoo_dir)
    assert again == manifest
    assert zoo.load_manifest(zoo_dir) == manifest


def test_data_splits(manifest: zoo.Manifest) -> None:
    x_tr, y_tr = zoo.load_split(manifest.path("digits_train.npz"))
    x_te, y_te = zoo.load_split(manifest.path("digits_test.npz"))
    assert x_tr.dtype == np.float32 and x_te.dtype == np.float32
    assert y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert x_tr.shape[1:] == (1, 8, 8) and x_te.shape[1:] == (1, 8, 8)
    assert (len(y_tr), len(y_te)) == (1437, 360)
    assert manifest.split_sizes == {"train": 1437, "test": 360}
    assert x_tr.min() >= 0.0 and x_tr.max() <= 1.0
    # Stratified: every class holds ~20% of its samples in the test split.
    for c in range(10):
        frac = (y_te == c).sum() / ((y_te == c).sum() + (y_tr == c).sum())
        assert abs(frac - 0.2) < 0.01


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("name", NAMES)
def test_accuracy_above_threshold(manifest: zoo.Manifest, name: str) -> None:
    acc = manifest.models[name].accuracy
    assert acc["onnxruntime"] >= MIN_ACCURACY[name]
    if HAS_LITERT_TORCH:
        assert acc["litert"] >= MIN_ACCURACY[name]


@pytest.mark.parametrize("name", NAMES)
def test_onnx_accuracy_measured_on_exported_file(
    manifest: zoo.Manifest, test_split: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    x, y = test_split
    logits = _ort_session(manifest.path(f"{name}.onnx")).run(["logits"], {"input": x})[0]
    acc = float((logits.argmax(axis=1) == y).mean())
    assert acc == pytest.approx(manifest.models[name].accuracy["onnxruntime"], abs=1e-12)


@needs_tflite
@pytest.mark.parametrize("name", NAMES)
def test_tflite_accuracy_measured_on_exported_file(
    manifest: zoo.Manifest, test_split: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    x, y = test_split
    logits = _tflite_logits(manifest.path(f"{name}.tflite"), x)
    acc = float((logits.argmax(axis=1) == y).mean())
    assert acc == pytest.approx(manifest.models[name].accuracy["litert"], abs=1e-12)


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", NAMES)
def test_onnx_matches_torch(
    manifest: zoo.Manifest, test_split: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    x = test_split[0]
    want = _torch_logits(manifest, name, x)
    got = _ort_session(manifest.path(f"{name}.onnx")).run(["logits"], {"input": x})[0]
    assert got.shape == (len(x), 10)
    assert np.abs(got - want).max() < 1e-4


@needs_tflite
@pytest.mark.parametrize("name", NAMES)
def test_tflite_matches_torch(
    manifest: zoo.Manifest, test_split: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    x = test_split[0][:100]
    want = _torch_logits(manifest, name, x)
    got = _tflite_logits(manifest.path(f"{name}.tflite"), x)
    assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_onnx_dynamic_batch(
    manifest: zoo.Manifest, test_split: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    sess = _ort_session(manifest.path(f"{name}.onnx"))
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    x = test_split[0]
    one = sess.run(["logits"], {"input": x[:1]})[0]
    seven = sess.run(["logits"], {"input": x[:7]})[0]
    assert one.shape == (1, 10) and seven.shape == (7, 10)
    assert np.abs(seven[:1] - one).max() < 1e-5


# --------------------------------------------------------------------------- cache


def test_rebuild_is_cache_hit(manifest: zoo.Manifest, zoo_dir: Path) -> None:
    mtimes = {f.name: (zoo_dir / f.name).stat().st_mtime_ns for f in manifest.all_files()}
    start = time.perf_counter()
    again = zoo.build_zoo(zoo_dir)
    assert time.perf_counter() - start < 2.0
    assert again == manifest
    assert _hashes(again) == _hashes(manifest)
    assert {n: (zoo_dir / n).stat().st_mtime_ns for n in mtimes} == mtimes


def test_cache_rejects_other_build_key(manifest: zoo.Manifest, zoo_dir: Path) -> None:
    assert zoo._valid_cache(zoo_dir, manifest.build_key) == manifest
    assert zoo._valid_cache(zoo_dir, "0" * 64) is None


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("entry", [["tools/zoo/build.py"], ["-m", "tools.zoo.build"]])
def test_cli_cache_hit(manifest: zoo.Manifest, zoo_dir: Path, entry: list[str]) -> None:
    proc = _run_cli(*entry, "--out", str(zoo_dir))
    assert proc.returncode == 0, proc.stderr
    assert "cache hit" in proc.stdout
    assert proc.stderr == ""


def _corrupted_copy(zoo_dir: Path, tmp_path: Path) -> Path:
    """A copy of the zoo with one byte of cnn.onnx flipped (same size)."""
    copy = tmp_path / "zoo"
    shutil.copytree(zoo_dir, copy)
    target = copy / "cnn.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return copy


def test_a_corrupted_file_is_no_cache_hit(
    manifest: zoo.Manifest, zoo_dir: Path, tmp_path: Path
) -> None:
    copy = _corrupted_copy(zoo_dir, tmp_path)  # same size: only the hash check can catch it
    assert zoo._valid_cache(copy, manifest.build_key) is None


@pytest.mark.e2e  # a whole zoo build (training both models) through the CLI: .ci/run's second tier
def test_corrupted_file_triggers_rebuild(
    manifest: zoo.Manifest, zoo_dir: Path, tmp_path: Path
) -> None:
    copy = _corrupted_copy(zoo_dir, tmp_path)
    assert zoo._valid_cache(copy, manifest.build_key) is None
    untouched = copy / "mlp.onnx"
    before = untouched.stat().st_mtime_ns

    proc = _run_cli("tools/zoo/build.py", "--out", str(copy))
    assert proc.returncode == 0, proc.stderr
    assert "built in" in proc.stdout
    chatter = [line for line in proc.stderr.splitlines() if not line.startswith("zoo: ")]
    assert chatter == [], "litert/XNNPACK chatter should be swallowed; only progress lines"
    assert "zoo: training mlp" in proc.stderr  # a first build says what it is doing
    assert len(proc.stdout.strip().splitlines()) == 3
    assert untouched.stat().st_mtime_ns != before  # a full rebuild, not a no-op

    rebuilt = zoo.build_zoo(copy)  # now a cache hit, so the files verify
    assert rebuilt.root == copy.resolve()
    # Seeded, deterministic, single-thread training: byte-identical artifacts.
    assert _hashes(rebuilt) == _hashes(manifest)


def test_missing_manifest_is_not_complete(manifest: zoo.Manifest, zoo_dir: Path, tmp_path: Path):
    copy = tmp_path / "zoo"
    shutil.copytree(zoo_dir, copy)
    (copy / "manifest.json").unlink()
    assert zoo.load_manifest(copy) is None
    assert zoo._valid_cache(copy, manifest.build_key) is None
    (copy / "manifest.json").write_text("{not json")
    assert zoo._valid_cache(copy, manifest.build_key) is None


@pytest.mark.skipif(os.name != "posix", reason="flock semantics")
def test_file_lock_excludes_second_builder(tmp_path: Path) -> None:
    acquired = threading.Event()

    def second() -> None:
        with zoo._file_lock(tmp_path):
            acquired.set()

    with zoo._file_lock(tmp_path):
        thread = threading.Thread(target=second)
        thread.start()
        assert not acquired.wait(0.3)
    assert acquired.wait(5.0)
    thread.join(5.0)


# --------------------------------------------------------------------------- progress


def test_a_long_step_says_it_is_still_running() -> None:
    out = io.StringIO()
    with zoo._Progress(out, heartbeat_s=0.05) as log:
        log.step("exporting cnn.tflite")
        deadline = time.monotonic() + 5.0
        while "still" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        log.line("exported cnn.tflite")
    lines = out.getvalue().splitlines()
    assert lines[0] == "zoo: exporting cnn.tflite..."
    assert lines[1].startswith("zoo: still exporting cnn.tflite (") and lines[1].endswith(" s)")
    assert lines[-1] == "zoo: exported cnn.tflite"


def test_progress_passes_the_converters_muted_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """The TFLite export mutes descriptor 2 (quiet()); the build's lines still show."""
    from edgeship.core.quiet import quiet

    with zoo._Progress() as log, quiet():
        os.write(2, b"converter chatter from C++\n")
        log.line("mlp epoch 1/30: loss 0.9474, training accuracy 75.37%")
    err = capfd.readouterr().err
    assert err == "zoo: mlp epoch 1/30: loss 0.9474, training accuracy 75.37%\n"
