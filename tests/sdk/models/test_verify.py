"""Verification: the three figures, tolerance, inputs, name/dtype/layout alignment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from edgeship.core.errors import ConversionError
from edgeship.models.align import align_inputs, find_permutation, match_names, normalize_name
from edgeship.models.verify import (
    Tolerance,
    VerifyData,
    VerifyReport,
    compare_output,
    failure_message,
    verification_feeds,
    verify,
)
from edgeship_runtime.errors import UsageError
from edgeship_runtime.signature import Signature, TensorSpec


class FnRunner:
    """A runner computing ``fn(x)`` with numpy; names and layout as given."""

    def __init__(self, fn, inputs, outputs) -> None:  # type: ignore[no-untyped-def]
        self.fn = fn
        self.signature = Signature(tuple(inputs), tuple(outputs))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        (name,) = [s.name for s in self.signature.inputs]
        (out,) = [s.name for s in self.signature.outputs]
        return {out: self.fn(feeds[name])}


def spec(name: str, shape: tuple, dtype: str = "float32") -> TensorSpec:  # type: ignore[type-arg]
    return TensorSpec(name, shape, dtype)


# ---------------------------------------------------------------------------- compare


def test_compare_output_checks_each_figure() -> None:
    ref = np.eye(4, dtype=np.float32) * 10
    [ok] = compare_output("y", "y", ref, ref + 1e-3, Tolerance())
    assert ok.passed and ok.max_abs_allowed == pytest.approx(1e-4 + 1e-2)
    assert ok.kind == "scores"
    [far] = compare_output("y", "y", ref, ref + 1.0, Tolerance())
    assert not far.passed
    [swapped] = compare_output("y", "y", ref, ref[::-1].copy(), Tolerance(atol=100))
    assert not swapped.passed and swapped.top1_agreement == 0.0
    [shape] = compare_output("y", "y", ref, ref[:2], Tolerance())
    assert not shape.passed and "shape [2, 4]" in shape.note
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert not compare_output("y", "y", ref, nan, Tolerance())[0].passed


@pytest.mark.parametrize(
    "kwargs", [{"atol": -1.0}, {"rtol": -0.1}, {"min_cosine": 1.5}, {"min_top1": -2.0}]
)
def test_tolerance_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        Tolerance(**kwargs)


def test_verify_data_validation() -> None:
    with pytest.raises(UsageError, match="samples must be >= 0"):
        VerifyData(samples=-1)
    with pytest.raises(UsageError, match="need samples >= 1"):
        VerifyData(samples=0)


# ---------------------------------------------------------------------------- inputs


def test_generated_inputs_fill_the_batch_axis() -> None:
    sig = Signature((spec("x", ("batch", 3)), spec("ids", (1, 2), "int64")), ())
    feeds = verification_feeds(sig, VerifyData(samples=5, seed=1))
    assert feeds["x"].shape == (5, 3) and feeds["x"].dtype == np.float32
    assert feeds["ids"].shape == (5, 2) and feeds["ids"].dtype == np.int64
    again = verification_feeds(sig, VerifyData(samples=5, seed=1))
    assert np.array_equal(feeds["x"], again["x"])
    fixed = Signature((spec("x", (3, 2)),), ())
    assert verification_feeds(fixed, VerifyData(samples=5))["x"].shape == (3, 2)


def test_data_file_inputs(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(12, dtype=np.float64).reshape(6, 2), labels=np.arange(6))
    sig = Signature((spec("x", ("batch", 2)),), ())
    feeds = verification_feeds(sig, VerifyData(data=path, samples=4))
    assert list(feeds) == ["x"] and feeds["x"].shape == (4, 2)
    assert feeds["x"].dtype == np.float32  # cast to the model's dtype
    other = Signature((spec("image", ("batch", 2)),), ())  # one array, one input: by position
    assert verification_feeds(other, VerifyData(data=path, samples=0))["image"].shape == (6, 2)
    two = Signature((spec("a", ("batch", 2)), spec("b", ("batch", 2))), ())
    with pytest.raises(UsageError, match=r"no array for input\(s\) \['a', 'b'\]"):
        verification_feeds(two, VerifyData(data=path))


# ---------------------------------------------------------------------------- alignment


def test_names_match_exactly_normalized_or_by_position() -> None:
    assert normalize_name("serving_default_logits_output") == "logits"
    assert normalize_name("logits:0") == "logits"
    assert match_names(["a", "b"], ["b", "a"], "output") == [("a", "a"), ("b", "b")]
    assert match_names(["input"], ["serving_default_input"], "input") == [
        ("input", "serving_default_input")
    ]
    assert match_names(["x"], ["StatefulPartitionedCall:0"], "output") == [
        ("x", "StatefulPartitionedCall:0")
    ]
    with pytest.raises(ConversionError, match=r"has 2 output\(s\)"):
        match_names(["y"], ["y", "z"], "output")


def test_permutation_finds_nchw_to_nhwc() -> None:
    assert find_permutation((5, 3, 4, 4), ("batch", 4, 4, 3)) == (0, 2, 3, 1)
    assert find_permutation((5, 3), ("batch", 3)) == (0, 1)
    assert find_permutation((6, 3), (1, 3), free_batch=True) == (0, 1)
    assert find_permutation((5, 3), ("batch", 4)) is None


def test_align_inputs_casts_and_transposes_with_notes() -> None:
    x = np.zeros((2, 3, 4, 4), np.float32)
    ids = np.zeros((2, 5), np.int64)
    source = Signature((spec("x", ("batch", 3, 4, 4)), spec("ids", ("batch", 5), "int64")), ())
    result = Signature(
        (spec("serving_default_x", (1, 4, 4, 3)), spec("serving_default_ids", (1, 5), "int32")), ()
    )
    feeds, notes = align_inputs({"x": x, "ids": ids}, source, result)
    assert feeds["serving_default_x"].shape == (2, 4, 4, 3)
    assert feeds["serving_default_ids"].dtype == np.int32
    assert any(n.startswith("LAYOUT CHANGED: input 'x'") for n in notes)
    assert any("int64 in the source, int32 here" in n for n in notes)
    bad = Signature((spec("x", ("batch", 7)), spec("ids", ("batch", 5), "int64")), ())
    with pytest.raises(ConversionError, match="no axis order maps"):
        align_inputs({"x": x, "ids": ids}, source, bad)


# ---------------------------------------------------------------------------- verify


def _pair(result_fn, result_out=("y", ("batch", 4))):  # type: ignore[no-untyped-def]
    source = FnRunner(
        lambda x: x @ np.eye(4, dtype=np.float32) * 3,
        [spec("x", ("batch", 4))],
        [spec("y", ("batch", 4))],
    )
    result = FnRunner(result_fn, [spec("x", ("batch", 4))], [spec(*result_out)])
    return source, result


def test_verify_passes_equivalent_and_fails_different() -> None:
    source, same = _pair(lambda x: x * 3 + 1e-6)
    report = verify(source, same, VerifyData(samples=16))
    assert report.passed and report.samples == 16
    assert report.outputs[0].max_abs_diff == pytest.approx(1e-6, rel=0.5)
    _, wrong = _pair(lambda x: x * 3 + 0.5)
    failed = verify(source, wrong, VerifyData(samples=16))
    assert not failed.passed
    message = failure_message(failed, "out.onnx")
    assert "output 'y'" in message and "max|Δ| 0.5" in message and "--force" in message


def test_verify_reports_a_layout_change() -> None:
    image = [spec("x", ("batch", 3, 2, 2))]
    source = FnRunner(lambda x: x * 2, image, [spec("y", ("batch", 3, 2, 2))])
    nhwc = FnRunner(
        lambda x: x * 2, [spec("x", ("batch", 2, 2, 3))], [spec("y", ("batch", 2, 2, 3))]
    )
    report = verify(source, nhwc, VerifyData(samples=4))
    assert report.passed
    layout = [n for n in report.notes if n.startswith("LAYOUT CHANGED")]
    assert len(layout) == 2  # the input and the output


def test_verify_lists_every_dtype_and_shape_change_of_the_interface() -> None:
    source = FnRunner(
        lambda ids: (ids % 4).astype(np.float32),
        [spec("ids", ("batch", 4), "int64")],
        [spec("y", ("batch", 4))],
    )
    narrowed = FnRunner(
        lambda ids: (ids % 4).astype(np.float32),
        [spec("ids", (1, 4), "int32")],
        [spec("y", (1, 4))],
    )
    report = verify(source, narrowed, VerifyData(samples=3))
    assert report.passed
    assert [str(c) for c in report.interface] == [
        "input 'ids' changed: int64 batch×4 → int32 1×4",
        "output 'y' changed: float32 batch×4 → float32 1×4",
    ]
    _, same = _pair(lambda x: x * 3)
    assert verify(_pair(lambda x: x)[0], same, VerifyData(samples=3)).interface == []


def test_report_round_trips_json() -> None:
    source, same = _pair(lambda x: x * 3)
    report = verify(source, same, VerifyData(samples=3))
    again = VerifyReport.from_dict(report.to_dict())
    assert again == report
    assert "max|Δ|" in report.summary()


# ------------------------------------------------------------ per sample, by kind


class OneAtATime(FnRunner):
    """A batch-1 model as the runtime runs a data set through it: one call per row, the
    outputs concatenated."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        (name,) = feeds
        rows = [
            super(OneAtATime, self).run({name: feeds[name][i : i + 1]})
            for i in range(len(feeds[name]))
        ]
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def test_outputs_are_compared_per_sample_not_over_concatenated_batches() -> None:
    """A reduction over the batch axis, bit-identical in both models: one call of 8 rows
    gives [1, 4], eight calls of one row [8, 4]; sample by sample both give [1, 4]."""

    def peak(x: np.ndarray) -> np.ndarray:
        return x.max(axis=0, keepdims=True)

    source = FnRunner(peak, [spec("x", ("batch", 4))], [spec("y", (1, 4))])
    batch_1 = OneAtATime(peak, [spec("x", (1, 4))], [spec("y", (1, 4))])
    report = verify(source, batch_1, VerifyData(samples=8))
    assert report.passed and report.samples == 8
    [y] = report.outputs
    assert y.shape == [8, 4] and y.max_abs_diff == 0.0


def _packed(rng: np.random.Generator) -> np.ndarray:
    """A YOLO-style head ``[2, 4+3, 64]``: boxes in pixels (0-320), scores in [0, 1]."""
    boxes = rng.uniform(0, 320, (2, 4, 64))
    scores = rng.uniform(0, 1, (2, 3, 64)) ** 4
    return np.concatenate([boxes, scores], axis=1).astype(np.float32)


def test_a_packed_head_is_judged_part_by_part_in_its_own_units() -> None:
    ref = _packed(np.random.default_rng(3))
    shifted = ref.copy()
    shifted[:, 4:] += 0.05  # every score off by 0.05: nothing next to boxes of 320 px
    boxes, scores = compare_output("head", "head", ref, shifted, Tolerance())
    assert (boxes.part, boxes.kind, boxes.passed) == ("boxes", "boxes", True)
    assert (scores.part, scores.kind, scores.passed) == ("scores", "scores", False)
    assert scores.max_abs_allowed < 0.01 < boxes.max_abs_allowed  # each in its own units
    assert "detection_f1" in scores.figures
    report = VerifyReport(2, "generated", {"min_cosine": 0.9999}, [boxes, scores], passed=False)
    message = failure_message(report, "out.tflite")
    assert "output 'head' (scores) [scores]: max|Δ| 0.05" in message


def test_an_output_that_collapsed_fails_within_the_tolerance() -> None:
    """A map of tiny values all zero in the result: every |Δ| is under atol, but the
    output is constant where the source's varies."""
    ref = np.random.default_rng(4).uniform(0, 1e-5, (4, 1, 8, 8)).astype(np.float32)
    [row] = compare_output("mask", "mask", ref, np.zeros_like(ref), Tolerance(min_cosine=-1.0))
    assert row.max_abs_diff <= row.max_abs_allowed and not row.passed
    assert row.kind == "map" and "all zeros over the 4 samples" in row.reasons[0]
