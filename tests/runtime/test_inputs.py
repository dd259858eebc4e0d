"""Inputs: generated from a signature, read from .npz/.npy, validated with clear messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship_runtime.errors import InputError, UsageError
from edgeship_runtime.inputs import (
    LABELS_KEY,
    feeds_from_arrays,
    generate_feeds,
    load_arrays,
    parse_shape_overrides,
    per_call_inputs,
    split_batches,
    validate_feeds,
)
from edgeship_runtime.signature import Signature, TensorSpec

IMAGE = TensorSpec("image", ("batch", 3, 8, 8), "float32")
IDS = TensorSpec("ids", ("batch", "seq"), "int64")
MASK = TensorSpec("mask", (None, 4), "bool")
SMALL = TensorSpec("small", (2, 2), "uint8")
OUT = TensorSpec("out", ("batch", 10), "float32")
STRINGS = Signature((TensorSpec("words", (1, None), "str"),), ())

ONE = Signature((IMAGE,), (OUT,))
MANY = Signature((IMAGE, IDS, MASK, SMALL), (OUT,))


# ------------------------------------------------------------------------- generation


def test_generated_dtypes_follow_the_signature() -> None:
    feeds = generate_feeds(MANY, {"ids": (1, 3)})
    assert {k: v.dtype.name for k, v in feeds.items()} == {
        "image": "float32",
        "ids": "int64",
        "mask": "bool",
        "small": "uint8",
    }


def test_generated_integers_stay_small_for_any_vocabulary() -> None:
    ids = generate_feeds(MANY, {"ids": (4, 64)})["ids"]
    assert ids.min() >= 0 and ids.max() < 4


def test_generation_is_deterministic_per_seed() -> None:
    a, b = (
        generate_feeds(MANY, {"ids": (1, 3)}, seed=3),
        generate_feeds(MANY, {"ids": (1, 3)}, seed=3),
    )
    c = generate_feeds(MANY, {"ids": (1, 3)}, seed=4)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["image"], c["image"])


def test_dynamic_batch_dims_default_to_one() -> None:
    feeds = generate_feeds(MANY, {"ids": (1, 5)})
    assert feeds["image"].shape == (1, 3, 8, 8)
    assert feeds["ids"].shape == (1, 5)
    assert feeds["mask"].shape == (1, 4)
    assert feeds["small"].shape == (2, 2)


def test_a_dim_named_like_a_batch_dim_is_a_batch_dim() -> None:
    state = TensorSpec("state", (2, "batch", 128), "float32")
    feeds = generate_feeds(Signature((IMAGE, state), (OUT,)))
    assert feeds["state"].shape == (2, 1, 128)


def test_a_dynamic_non_batch_dim_is_never_guessed() -> None:
    with pytest.raises(
        InputError,
        match=r"'ids' \[batch, seq\]: dimension 1 \('seq'\).*"
        r"--shape ids=1,SEQ",
    ):
        generate_feeds(MANY)
    sig = Signature((TensorSpec("x", (None, 3, "p2o.Dim.1", None), "float32"),), (OUT,))
    with pytest.raises(InputError, match=r"dimension 2 .*--shape x=1,3,D2,D3"):
        generate_feeds(sig)


def test_dynamic_dims_from_overrides() -> None:
    feeds = generate_feeds(MANY, {"image": (5, 3, 8, 8), "ids": (5, 7)})
    assert feeds["image"].shape == (5, 3, 8, 8)
    assert feeds["ids"].shape == (5, 7)


def test_override_that_contradicts_a_fixed_dim_names_the_input() -> None:
    with pytest.raises(InputError, match=r"image.*\[2, 4, 8, 8\].*\[batch, 3, 8, 8\]"):
        generate_feeds(ONE, {"image": (2, 4, 8, 8)})


def test_override_of_an_unknown_input_names_it_and_the_real_ones() -> None:
    with pytest.raises(InputError, match=r"'imgae'.*'image'"):
        generate_feeds(ONE, {"imgae": (1, 3, 8, 8)})


def test_string_inputs_cannot_be_generated() -> None:
    sig = Signature((TensorSpec("text", (1,), "str"),), (OUT,))
    with pytest.raises(InputError, match=r"'text'.*string"):
        generate_feeds(sig)


# -------------------------------------------------------------------------- validation


def test_wrong_dtype_names_input_expected_and_given() -> None:
    feeds = {"image": np.zeros((1, 3, 8, 8), np.float64)}
    with pytest.raises(InputError) as info:
        validate_feeds(ONE, feeds)
    assert str(info.value) == "input 'image': dtype float64, expected float32"
    assert info.value.details == {"input": "image", "expected": "float32", "given": "float64"}


def test_wrong_shape_names_input_expected_and_given() -> None:
    feeds = {"image": np.zeros((1, 3, 9, 8), np.float32)}
    with pytest.raises(InputError) as info:
        validate_feeds(ONE, feeds)
    assert str(info.value) == "input 'image': shape [1, 3, 9, 8], expected [batch, 3, 8, 8]"
    assert info.value.details["given"] == [1, 3, 9, 8]


def test_wrong_rank_is_a_shape_error() -> None:
    with pytest.raises(InputError, match=r"shape \[3, 8, 8\]"):
        validate_feeds(ONE, {"image": np.zeros((3, 8, 8), np.float32)})


def test_unknown_dims_print_as_question_marks() -> None:
    sig = Signature((MASK,), (OUT,))
    with pytest.raises(InputError, match=r"expected \[\?, 4\]"):
        validate_feeds(sig, {"mask": np.zeros((1, 5), bool)})


def test_missing_input_is_named() -> None:
    feeds = generate_feeds(MANY, {"ids": (1, 3)})
    del feeds["ids"]
    with pytest.raises(InputError, match=r"missing input\(s\) \['ids'\]"):
        validate_feeds(MANY, feeds)


def test_extra_input_is_named() -> None:
    feeds = {**generate_feeds(ONE), "bogus": np.zeros(1, np.float32)}
    with pytest.raises(InputError, match=r"unexpected input\(s\) \['bogus'\].*\['image'\]"):
        validate_feeds(ONE, feeds)


def test_dynamic_dims_accept_any_size() -> None:
    validate_feeds(ONE, {"image": np.zeros((17, 3, 8, 8), np.float32)})


# ------------------------------------------------------------------------------- files


def test_npz_round_trip_and_labels_are_ignored(tmp_path: Path) -> None:
    image = np.ones((2, 3, 8, 8), np.float32)
    path = tmp_path / "data.npz"
    np.savez(path, image=image, labels=np.array([1, 2]))
    assert LABELS_KEY == "labels"
    feeds = feeds_from_arrays(ONE, load_arrays(str(path)))
    assert list(feeds) == ["image"]
    np.testing.assert_array_equal(feeds["image"], image)


def test_npy_feeds_a_single_input_model(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 3, 8, 8), np.float32))
    feeds = feeds_from_arrays(ONE, load_arrays(str(path)))
    assert list(feeds) == ["image"]


def test_npy_for_a_multi_input_model_names_the_inputs(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"one array.*\['image', 'ids', 'mask', 'small'\]"):
        feeds_from_arrays(MANY, load_arrays(str(path)))


def test_missing_inputs_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such inputs file"):
        load_arrays(str(tmp_path / "nope.npz"))


def test_unreadable_inputs_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    path.write_text("not a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz/\.npy"):
        load_arrays(str(path))


def test_a_string_array_file_is_read_and_feeds_a_string_input(tmp_path: Path) -> None:
    path = tmp_path / "words.npz"
    np.savez(path, words=np.array([["monday", "tuesday"]], dtype=str))
    feeds = feeds_from_arrays(STRINGS, load_arrays(str(path)))
    assert feeds["words"].tolist() == [["monday", "tuesday"]]


def test_an_object_array_file_is_refused_saying_how_to_save_it(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, words=np.array(["monday", "tuesday"], dtype=object))  # pickled inside
    with pytest.raises(InputError) as caught:
        load_arrays(str(path))
    message = str(caught.value)
    assert "array 'words' is an object array" in message and "never unpickles" in message
    assert "np.savez(path, words=np.asarray(values, dtype=str))" in message


def test_a_number_array_for_a_string_input_names_both_dtypes() -> None:
    with pytest.raises(InputError, match="input 'words': dtype float32, expected str"):
        validate_feeds(Signature((STRINGS.inputs[0],), ()), {"words": np.ones((1, 2), "f4")})


# ------------------------------------------------------------------------------ --shape


def test_shape_overrides_parse() -> None:
    assert parse_shape_overrides(["a=1,3,224,224", "b=2"]) == {"a": (1, 3, 224, 224), "b": (2,)}


@pytest.mark.parametrize("item", ["a", "a=", "=1,2", "a=1,x", "a=0,2", "a=-1", "a=1;2"])
def test_malformed_shape_overrides(item: str) -> None:
    with pytest.raises(UsageError, match="bad --shape"):
        parse_shape_overrides([item])


def test_a_misnamed_input_is_both_missing_and_unexpected() -> None:
    with pytest.raises(InputError) as info:
        validate_feeds(ONE, {"img": np.zeros((1, 3, 8, 8), np.float32)})
    assert str(info.value) == (
        "missing input(s) ['image']; unexpected input(s) ['img']; the model expects ['image']"
    )
    assert info.value.details == {"missing": ["image"], "extra": ["img"]}


# ------------------------------------------------------------------------- per-call inputs

SAMPLES_FIXED = TensorSpec("input", (1, 512), "float32")
STATE = TensorSpec("state", (2, None, 128), "float32")
RATE = TensorSpec("sr", (), "int64")
STATEFUL = Signature((SAMPLES_FIXED, STATE, RATE), (OUT,))


def _stateful_feeds(samples: int) -> dict[str, np.ndarray]:
    return {
        "input": np.arange(samples * 512, dtype=np.float32).reshape(samples, 512),
        "state": np.ones((2, 1, 128), np.float32),
        "sr": np.array(16000, np.int64),
    }


def test_scalars_and_fixed_first_dims_are_per_call() -> None:
    assert per_call_inputs(STATEFUL, _stateful_feeds(4)) == ["state", "sr"]


def test_a_state_fixed_at_1_beside_more_samples_is_per_call() -> None:
    sequence = TensorSpec("input", ("steps", 512), "float32")
    h, c = TensorSpec("h", (1, 1, 128), "float32"), TensorSpec("c", (1, 1, 128), "float32")
    lstm = Signature((sequence, h, c), (OUT,))
    state = np.zeros((1, 1, 128), np.float32)
    feeds = {"input": np.zeros((40, 512), np.float32), "h": state, "c": state}
    assert per_call_inputs(lstm, feeds) == ["h", "c"]
    one_row = {**feeds, "input": np.zeros((1, 512), np.float32)}  # one sample: batch-first
    assert per_call_inputs(lstm, one_row) == []


def test_batch_1_and_dynamic_first_dims_are_samples_first() -> None:
    feeds = {"image": np.zeros((3, 3, 8, 8), np.float32), "small": np.zeros((2, 2), np.uint8)}
    # SMALL fixes its first dim at 2 and the array fits: per call; IMAGE is batch-first
    assert per_call_inputs(MANY, feeds) == ["small"]
    assert per_call_inputs(MANY, {"small": np.zeros((4, 2, 2), np.uint8)}) == []


def test_split_batches_gives_per_call_inputs_to_every_chunk() -> None:
    feeds = _stateful_feeds(3)
    chunks = split_batches(STATEFUL, feeds)
    assert len(chunks) == 3
    for i, chunk in enumerate(chunks):
        validate_feeds(STATEFUL, chunk)
        np.testing.assert_array_equal(chunk["input"], feeds["input"][i : i + 1])
        assert chunk["state"] is feeds["state"] and chunk["sr"] is feeds["sr"]


def test_split_batches_keeps_one_call_for_one_sample() -> None:
    feeds = _stateful_feeds(1)
    assert split_batches(STATEFUL, feeds) == [feeds]
