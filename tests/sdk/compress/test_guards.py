"""The guards against a silent wrong result (issue 12), each on a small model built here:
a collapse fails with one line naming it and what to try, a no-op fails, a larger result
fails unless kept, a dynamic non-batch dim is never guessed, maps are not judged by an arg-max,
and accuracy is measured on data the method never saw."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeship.compress import (
    ChannelPruneConfig,
    CompressOptions,
    Dataset,
    FidelityCollapse,
    GuardPolicy,
    Larger,
    NoChange,
    PruneConfig,
    QuantizeConfig,
    TrainConfig,
    compress,
    guard,
)
from edgeship.compress.quantization import onnx_fp16, onnx_int8
from edgeship.compress.report import Latency
from edgeship.core.errors import InputError
from edgeship.models.fidelity import compare
from edgeship.models.kinds import judge
from edgeship.models.prepare import fold_constants
from tests import models
from tests.sdk.compress.conftest import HAS_FP16, ort_outputs
from tools.zoo.build import Manifest

KEEP = CompressOptions(guard=GuardPolicy(allow_degraded=True))


def _images(n: int, side: int = models.FIELD_SIDE, channels: int = 4) -> dict[str, np.ndarray]:
    x = np.random.default_rng(1).standard_normal((n, channels, side, side))
    return {"x": x.astype(np.float32)}


# ------------------------------------------------------------------------ collapse


@pytest.mark.skipif(not HAS_FP16, reason="onnxconverter-common not installed")
def test_fp16_keeps_out_of_range_batchnorm_in_float32(tmp_path: Path) -> None:
    base = models.field_cnn_model(tmp_path / "field.onnx")
    result = compress(base, QuantizeConfig("fp16"), _images(64), tmp_path / "half.onnx")
    rec = result.report
    assert rec.fidelity is not None and rec.fidelity.top1_agreement == 1.0
    assert any("8 Constant weight(s) folded" in n for n in rec.notes)
    model = onnx.load(str(base))
    fold_constants(model)
    assert onnx_fp16.out_of_range_nodes(model) == ["bn"]  # kept float32 where no fusion removed it
    options = CompressOptions(shapes={})
    plain = compress(
        base,
        QuantizeConfig("fp16", exclude_nodes=("conv1",)),  # names kept: no simplification
        _images(64),
        tmp_path / "half2.onnx",
        options,
    ).report
    assert "bn" in plain.details["float_nodes"] and plain.fidelity is not None
    assert plain.fidelity.top1_agreement == 1.0
    assert any("kept in float32" in n and "bn" in n for n in plain.notes)


@pytest.mark.skipif(not HAS_FP16, reason="onnxconverter-common not installed")
def test_the_clamped_batchnorm_seen_in_the_field_is_a_collapse(tmp_path: Path) -> None:
    """What onnxconverter-common's defaults do to variances of 1e8 (clamped to 1e4): the
    guard calls that a collapse."""
    from onnxconverter_common import float16

    model = onnx.load(str(models.field_cnn_model(tmp_path / "field.onnx")))
    fold_constants(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the float32 number 162994640.0 will be truncated"
        bad = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(bad, tmp_path / "bad.onnx")
    feeds = _images(64)
    base, bad = (
        ort_outputs(tmp_path / "field.onnx", feeds),
        ort_outputs(tmp_path / "bad.onnx", feeds),
    )
    reasons = guard.collapse_reasons(judge("y", base, bad), None, GuardPolicy())
    assert reasons and "the base's mean |output|" in reasons[0]  # logits 70× off


def test_global_pruning_that_zeroes_the_classifier_fails(tmp_path: Path) -> None:
    base = models.small_head_model(tmp_path / "head.onnx")
    data = {"x": np.random.default_rng(2).standard_normal((32, 16)).astype(np.float32)}
    out = tmp_path / "pruned.onnx"
    with pytest.raises(FidelityCollapse) as info:
        compress(base, PruneConfig(0.5), data, out)
    message = str(info.value)
    assert "constant over the 32 samples" in message
    assert "layer weight 'w2' is all zeros" in message
    assert "--scope layer" in message and "--allow-degraded" in message
    assert not out.exists()  # nothing that looks usable is left
    kept = compress(base, PruneConfig(0.5), data, out, KEEP).report
    assert "all zeros" in kept.degraded and kept.notes[0].startswith("DEGRADED")
    layer = compress(base, PruneConfig(0.5, scope="layer"), data, tmp_path / "layer.onnx")
    assert layer.report.degraded == "" and layer.report.model.sparsity > 0.45


def test_channel_pruning_without_fine_tuning_collapses_the_zoo_cnn(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    with pytest.raises(
        FidelityCollapse, match=r"accuracy .* pt > 20.*--epochs N.*--importance activation"
    ):
        compress(zoo.path("cnn.onnx"), ChannelPruneConfig(0.5), test_data, tmp_path / "s.onnx")


def test_the_cli_says_what_collapsed_in_one_line(tmp_path: Path) -> None:
    base = models.small_head_model(tmp_path / "head.onnx")
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(2).standard_normal((32, 16)).astype(np.float32))
    argv = [str(base), "--method", "prune", "--data", str(data), "--out", str(tmp_path / "p.onnx")]
    done = _cli(*argv)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: prune collapsed the model")
    kept = _cli(*argv, "--allow-degraded")
    assert kept.returncode == 0 and "DEGRADED" in kept.stdout


# ---------------------------------------------------------------- no-op and larger


def test_a_compression_that_changes_nothing_fails(tmp_path: Path) -> None:
    base = models.add_model(tmp_path / "add.onnx", width=65536)  # nothing INT8 takes
    out = tmp_path / "q.onnx"
    with pytest.raises(NoChange, match=r"int8-dynamic changed nothing: the same size \(1\.000×\)"):
        compress(base, QuantizeConfig("int8-dynamic"), None, out)
    assert not out.exists()


def test_a_result_larger_than_its_base_fails_unless_allowed(tmp_path: Path) -> None:
    base = models.tiny_matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "q.onnx"
    with pytest.raises(Larger, match=r"the result is LARGER than its base \(.* bytes, .*×\)"):
        compress(base, QuantizeConfig("int8-dynamic"), None, out)
    assert not out.exists()
    rec = compress(base, QuantizeConfig("int8-dynamic"), None, out, KEEP).report
    assert rec.model.size_bytes > rec.base.size_bytes
    assert rec.notes[0].startswith("warning: the result is LARGER than its base")
    assert "LARGER" in rec.degraded


def test_constant_weights_are_quantized_not_skipped(tmp_path: Path) -> None:
    """Paddle-style Constant weights are folded first, so INT8 makes the model smaller."""
    base = models.field_cnn_model(tmp_path / "field.onnx")
    rec = compress(base, QuantizeConfig("int8-dynamic"), _images(32), tmp_path / "q.onnx").report
    assert rec.base.parameters > 600 and rec.model.size_bytes < rec.base.size_bytes
    assert {"conv2", "fc"} <= set(rec.details["quantized_nodes"])


# --------------------------------------------------------------- shapes and outputs


def test_a_dynamic_non_batch_dim_is_refused_naming_it(tmp_path: Path) -> None:
    base = models.map_model(tmp_path / "map.onnx", side="height")
    with pytest.raises(InputError, match=r"dimension 2 \('height'\).*--shape x=1,3,HEIGHT,HEIGHT"):
        compress(base, QuantizeConfig("int8-dynamic"), None, tmp_path / "q.onnx")


def test_dynamic_dims_from_shape_and_from_data(tmp_path: Path) -> None:
    base = models.map_model(tmp_path / "map.onnx", side="height")
    shaped = CompressOptions(  # INT8 of so small a model is larger than its base: kept
        shapes={"x": (1, 3, 12, 12)}, latency=True, latency_runs=5, guard=KEEP.guard
    )
    rec = compress(base, QuantizeConfig("int8-dynamic"), None, tmp_path / "a.onnx", shaped).report
    assert "x [1, 3, 12, 12]" in rec.evaluation
    assert rec.latency is not None and rec.latency.input_shapes == {"x": [1, 3, 12, 12]}
    data = _images(8, side=10, channels=3)
    timed = CompressOptions(latency=True, latency_runs=5, latency_rounds=1, guard=KEEP.guard)
    rec = compress(base, QuantizeConfig("int8-dynamic"), data, tmp_path / "b.onnx", timed).report
    assert rec.latency is not None and rec.latency.input_shapes == {"x": [1, 3, 10, 10]}


def test_maps_are_judged_by_cosine_not_by_an_arg_max(tmp_path: Path) -> None:
    base = models.map_model(tmp_path / "map.onnx", side=8)
    rec = compress(base, QuantizeConfig("int8-dynamic"), None, tmp_path / "q.onnx", KEEP).report
    assert rec.fidelity is not None and rec.fidelity.top1_agreement is None
    assert rec.fidelity.cosine is not None and rec.fidelity.cosine > 0.99
    [verdict] = rec.outputs
    assert verdict.kind == "map" and not verdict.collapsed
    assert rec.evaluation.startswith("inputs generated at the model's shape (8 seeds")


# ------------------------------------------------------------------ honest accuracy


def test_accuracy_is_measured_on_held_out_data(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    data = test_data.take(200)
    rec = compress(zoo.path("mlp.onnx"), QuantizeConfig("int8-static"), data, tmp_path / "a.onnx")
    assert rec.report.fidelity is not None and rec.report.fidelity.samples == 40
    assert rec.report.evaluation.startswith("40 of 200 samples of --data held out")
    held = test_data.slice(200, 260)
    rec = compress(
        zoo.path("mlp.onnx"),
        QuantizeConfig("int8-static"),
        data,
        tmp_path / "b.onnx",
        eval_data=held,
    )
    assert rec.report.fidelity is not None and rec.report.fidelity.samples == 60
    assert rec.report.evaluation == "--eval-data (60 samples)"


# ----------------------------------------------------------------- error lines


def test_error_lines_name_the_cause() -> None:
    describe = onnx_int8.describe
    assert describe(RuntimeError("")) == "RuntimeError"
    assert describe(ValueError("bad\nmore")) == "ValueError: bad more"  # ONNX Runtime's dims
    assert (
        describe(ValueError("x" * 500)).endswith("x…")
        and len(describe(ValueError("x" * 500))) < 420
    )


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeship.cli.main", "compress", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


# ------------------------------------------------------------- TFLite from the field


def test_tflite_without_a_signature_is_quantized(
    zoo: Manifest, test_data: Dataset, tmp_path: Path
) -> None:
    """MediaPipe-style: no SignatureDef; one is added over the main subgraph."""
    if "tflite" not in zoo.models["cnn"].files:
        pytest.skip("the zoo has no .tflite (litert-torch missing)")
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(zoo.path("cnn.tflite")))
    model.signatureDefs = []
    bare = tmp_path / "bare.tflite"
    flatbuffer_utils.write_model(model, str(bare))
    assert Interpreter(model_path=str(bare)).get_signature_list() == {}
    name = Interpreter(model_path=str(bare)).get_input_details()[0]["name"]
    data = {name: test_data.feeds["input"][:64]}
    for method in ("int8-dynamic", "int8-static"):
        rec = compress(bare, QuantizeConfig(method), data, tmp_path / f"{method}.tflite").report
        assert any("no SignatureDef" in n for n in rec.notes)
        assert rec.model.size_bytes < 0.5 * rec.base.size_bytes
        assert rec.fidelity is not None and rec.fidelity.top1_agreement is not None
        assert rec.fidelity.top1_agreement >= 0.9


def test_ab_takes_dynamic_dims_from_its_data() -> None:
    from edgeship.ab.runner import _data_shapes
    from edgeship_runtime.signature import Signature, TensorSpec

    sig = Signature((TensorSpec("ids", ("batch", "seq"), "int64"),), ())
    data = {"ids": np.zeros((10, 7), np.int64), "labels": np.zeros(10, np.int64)}
    assert _data_shapes(data, sig) == {"ids": (1, 7)}


def test_diverging_fine_tuning_is_stopped_and_undone() -> None:
    import torch

    from edgeship.compress import TrainConfig
    from edgeship.compress.training.loop import fit

    torch.manual_seed(0)
    module = torch.nn.Linear(4, 3)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    x[:, 0] = np.inf  # the loss is NaN from the first step
    data = Dataset({"x": x}, np.zeros(16, np.int64))
    log = fit(module, data, None, TrainConfig(epochs=3))
    assert log.stopped == "non-finite" and log.epochs == 0
    for name, value in module.state_dict().items():
        assert torch.equal(value, before[name])  # the diverged steps were undone


def test_distill_without_a_narrowable_layer_says_so(tmp_path: Path) -> None:
    from edgeship.compress import CompressionError, DistillConfig

    base = models.tiny_matmul_model(tmp_path / "mm.onnx")
    data = {"x": np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)}
    with pytest.raises(CompressionError) as info:
        compress(base, DistillConfig(), data, tmp_path / "s.onnx")
    message = str(info.value)
    assert "nothing to prune" not in message
    assert "cannot derive a narrower student" in message and "--student" in message


def test_class_scores_that_moved_are_a_collapse_though_most_arg_maxes_agree() -> None:
    # like PaddleOCR's direction classifier under INT8: an unsure base (0.4-0.6), 7 of 8
    # arg-maxes kept, the probabilities moved by 0.3 on average
    base = np.array([[p, 1 - p] for p in (0.45, 0.58, 0.3, 0.9, 0.48, 0.4, 0.62, 0.7)])
    new = np.array([[p, 1 - p] for p in (0.1, 0.9, 0.05, 0.55, 0.2, 0.05, 0.8, 0.3)])
    fid = compare(base, new)
    assert fid.top1_agreement is not None and fid.top1_agreement >= 0.7
    assert fid.cosine is not None and fid.cosine < 0.9
    reasons = guard.collapse_reasons(judge("y", base, new), fid, GuardPolicy())
    assert reasons == [f"output 'y': cosine {fid.cosine:.4f} < 0.9 against the base"]
    # a trained model's scores may differ in scale and offset: no cosine there
    assert guard.collapse_reasons(judge("y", base, new, trained=True), fid, GuardPolicy()) == []


def test_eval_data_fixes_dynamic_dims_for_int8_dynamic(tmp_path: Path) -> None:
    """No --data: the fallback's search inputs are generated at the shape --eval-data has."""
    base = models.map_model(tmp_path / "map.onnx", side="height")
    held = _images(8, side=10, channels=3)
    rec = compress(
        base, QuantizeConfig("int8-dynamic"), None, tmp_path / "q.onnx", KEEP, eval_data=held
    ).report
    assert rec.evaluation == "--eval-data (8 samples)"
    assert rec.fidelity is not None and rec.fidelity.samples == 8


def test_hints_fit_what_was_given() -> None:
    assert "--epochs N" in guard.hint(["prune"])
    given = guard.hint(["prune"], trained=["prune"])
    assert "more --epochs" in given and "--epochs N" not in given
    chain = guard.hint(["prune-channels", "int8-static"], trained=["prune-channels"])
    assert chain.startswith("more --epochs") and "--exclude-op" in chain


def test_a_collapse_after_fine_tuning_suggests_more_epochs(tmp_path: Path) -> None:
    base = models.small_head_model(tmp_path / "head.onnx")
    data = {"x": np.random.default_rng(2).standard_normal((32, 16)).astype(np.float32)}
    config = PruneConfig(0.5, fine_tune=TrainConfig(epochs=1))
    with pytest.raises(FidelityCollapse) as info:
        compress(base, config, data, tmp_path / "p.onnx")
    assert "more --epochs" in str(info.value) and "--epochs N" not in str(info.value)


def test_the_sign_test_needs_eleven_slower_rounds_of_twelve() -> None:
    assert guard.sign_test_p(3, 3) == 1 / 8  # three rounds can never say "slower"
    assert guard.sign_test_p(11, 12) < guard.SLOWER_P < guard.sign_test_p(10, 12)
    assert guard.sign_test_p(0, 12) == 1.0


def _rounds(rng: np.random.Generator, slowdown: float, spread: float) -> Latency:
    """Twelve paired rounds whose log ratios are normal around ``log(1 + slowdown)``."""
    ratios = np.exp(rng.normal(np.log1p(slowdown), spread, 12))
    return Latency.of_rounds("local", 1, [1.0] * 12, list(ratios), {})


def _refused(rng: np.random.Generator, slowdown: float, spread: float, trials: int) -> float:
    policy = GuardPolicy()
    found = [guard.slower_message(_rounds(rng, slowdown, spread), policy) for _ in range(trials)]
    return sum(f is not None for f in found) / trials


@pytest.mark.parametrize("spread", [0.02, 0.1, 0.25])
def test_the_stated_detectable_slowdown_is_refused_four_times_in_five(spread: float) -> None:
    """Rounds spread as the measured ones did, slowed by the stated figure: the guard's
    own rule refuses about 80 % of them (a little more: its two conditions overlap); half
    that slowdown is refused far less often."""
    rng = np.random.default_rng(3)
    measured = _rounds(rng, 0.0, spread)
    slowdown, sd = guard.detectable_slowdown(measured, GuardPolicy()), measured.round_spread
    assert slowdown is not None and sd is not None and slowdown >= GuardPolicy().max_slowdown
    assert 0.75 <= _refused(rng, slowdown, sd, 2000) <= 0.92
    assert _refused(rng, slowdown / 2, sd, 2000) < 0.7


def test_no_detectable_slowdown_is_stated_from_one_round() -> None:
    one = Latency.of_rounds("local", 1, [1.0], [1.1], {})
    assert one.round_spread is None and guard.detectable_slowdown(one, GuardPolicy()) is None


def test_a_hint_never_suggests_an_option_already_given() -> None:
    assert guard.hint(["prune"]).startswith("--scope layer, a lower --sparsity")
    given = guard.hint(["prune"], trained=["prune"], given=["--scope layer"])
    assert given == "a lower --sparsity or more --epochs (fine-tuning on --data)"
    static = guard.hint(["int8-static"], given=["--calibration entropy"])
    assert static == "fp16 or --exclude-op OP (keep those op types in float)"
