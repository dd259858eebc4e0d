"""Inputs for a model: read from .npz/.npy or generated from its signature, then validated.

Validation happens once, before the first run, so a mismatch is a message naming the
input and both shapes/dtypes rather than a backend stack trace mid-benchmark.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from .errors import InputError, UsageError
from .signature import Signature, TensorSpec, dims_compatible

LABELS_KEY = "labels"
"""A data file may carry ground truth under this key; it is never fed to the model."""

Feeds = Dict[str, np.ndarray]


def input_mapping(given: Sequence[str], names: Sequence[str]) -> Dict[str, str]:
    """Each of the ``given`` input names (the data's) → the model input it feeds: by name
    when they are the model's ``names`` in any order (Silero's two exports take ``state``
    and ``sr`` in opposite orders), else by position (a converted model's own names, such
    as TFLite's ``serving_default_x:0``)."""
    if set(given) == set(names):
        return {n: n for n in given}
    if len(given) != len(names):
        raise ValueError(f"{len(given)} arrays {list(given)} for {len(names)} inputs {list(names)}")
    return dict(zip(given, names))


def named_as(feeds: Mapping[str, np.ndarray], names: Sequence[str]) -> Dict[str, np.ndarray]:
    """``feeds`` under the model's input ``names``, in that order (:func:`input_mapping`)."""
    mapping = input_mapping(list(feeds), names)
    by_input = {mapping[k]: v for k, v in feeds.items()}
    return {n: by_input[n] for n in names}


def parse_shape_overrides(items: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """``["input=1,3,224,224"]`` → ``{"input": (1, 3, 224, 224)}``."""
    shapes: Dict[str, Tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise UsageError(f"bad --shape {item!r}: expected NAME=D1,D2,... with positive dims")
        shapes[name] = shape
    return shapes


def load_arrays(path: str) -> Feeds:
    """Arrays of an .npz (by key) or .npy (key ``""``: the model's only input). Never
    unpickles: an object array is refused, saying how to save strings instead."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such inputs file", path=path)
    key = ""
    try:
        if path.endswith(".npy"):
            return {key: np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for key in data.files:
                arrays[key] = data[key]
            return arrays
    except ValueError as exc:
        if "Object arrays" not in str(exc):
            raise InputError(f"{path}: not a readable .npz/.npy file ({exc})", path=path) from exc
        raise InputError(
            f"{path}: array {key!r} is an object array, which numpy saves by pickling and "
            "edgeship never unpickles; save strings as a fixed-width array: "
            f"np.savez(path, {key or 'x'}=np.asarray(values, dtype=str))",
            path=path,
            input=key,
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npz/.npy file ({exc})", path=path) from exc


def feeds_from_arrays(signature: Signature, arrays: Mapping[str, np.ndarray]) -> Feeds:
    """Drop labels, name a bare .npy after the only input, then validate."""
    feeds = named_feeds(signature, arrays)
    validate_feeds(signature, feeds)
    return feeds


def named_feeds(signature: Signature, arrays: Mapping[str, np.ndarray]) -> Feeds:
    """The arrays meant as inputs: labels dropped, a bare .npy named after the only input."""
    feeds = {k: v for k, v in arrays.items() if k != LABELS_KEY}
    if set(feeds) == {""}:
        if len(signature.inputs) != 1:
            names = [s.name for s in signature.inputs]
            raise InputError(f"a .npy file holds one array but the model has inputs {names}")
        feeds = {signature.inputs[0].name: feeds[""]}
    return feeds


def per_call_inputs(signature: Signature, feeds: Mapping[str, np.ndarray]) -> List[str]:
    """The inputs of ``feeds`` given once for every call rather than one row per sample:
    those whose array fits the model's input as it is and whose first dim cannot be the
    samples axis, i.e. a scalar (a sample rate), a first dim the model fixes at more than
    1 (a state ``[2, batch, 128]``), or one it fixes at 1 where the array's one row stands
    beside other inputs of more samples (an LSTM's ``h`` ``[1, 1, 128]`` beside 40 chunks).
    Every other input is samples-first."""
    fixed: Set[str] = set()
    ones: Set[str] = set()
    for name, array in feeds.items():
        spec = signature.input(name)
        if spec is None or not dims_compatible(spec.shape, array.shape):
            continue
        first = spec.shape[0] if spec.shape else None
        if not spec.shape or (isinstance(first, int) and first > 1):
            fixed.add(name)
        elif first == 1:
            ones.add(name)
    rows = [a.shape[0] for k, a in feeds.items() if k not in fixed | ones and a.ndim]
    if rows and min(rows) > 1:
        fixed |= ones
    return [name for name in feeds if name in fixed]


def split_batches(signature: Signature, feeds: Feeds) -> List[Feeds]:
    """``feeds`` as one call, or in chunks when the model has a fixed batch size B on
    every samples-first input and the data holds a multiple k·B (k > 1) samples: a data
    set run through a batch-1 model (most .tflite files) sample by sample. Per-call inputs
    (:func:`per_call_inputs`) go whole into every chunk."""
    fixed = per_call_inputs(signature, feeds)
    samples = {k: v for k, v in feeds.items() if k not in fixed}
    specs = [s for s in signature.inputs if s.name in samples]
    leading = {s.shape[0] if s.shape else None for s in specs}
    sizes = {a.shape[0] if a.ndim else None for a in samples.values()}
    if len(leading) != 1 or len(sizes) != 1:
        return [feeds]
    (batch,), (total,) = leading, sizes
    if not isinstance(batch, int) or batch <= 0 or not isinstance(total, int):
        return [feeds]
    if total == batch or total % batch:
        return [feeds]
    return [
        {k: v if k in fixed else v[i : i + batch] for k, v in feeds.items()}
        for i in range(0, total, batch)
    ]


def validate_feeds(signature: Signature, feeds: Mapping[str, np.ndarray]) -> None:
    expected = [s.name for s in signature.inputs]
    missing = [n for n in expected if n not in feeds]
    extra = [n for n in feeds if signature.input(n) is None]
    if missing or extra:
        problems = [f"missing input(s) {missing}"] if missing else []
        problems += [f"unexpected input(s) {extra}"] if extra else []
        raise InputError(
            f"{'; '.join(problems)}; the model expects {expected}", missing=missing, extra=extra
        )
    for spec in signature.inputs:
        _check_one(spec, feeds[spec.name])


def _check_one(spec: TensorSpec, array: np.ndarray) -> None:
    given = dtype_name(array.dtype)
    if given != spec.dtype:
        raise InputError(
            f"input {spec.name!r}: dtype {given}, expected {spec.dtype}",
            input=spec.name,
            expected=spec.dtype,
            given=given,
        )
    if not dims_compatible(spec.shape, array.shape):
        raise InputError(
            f"input {spec.name!r}: shape {list(array.shape)}, expected {spec.shape_text()}",
            input=spec.name,
            expected=list(spec.shape),
            given=list(array.shape),
        )


def dtype_name(dtype: np.dtype) -> str:
    """A dtype as signatures name it: ``float32``...; ``str`` for fixed-width strings."""
    return "str" if dtype.kind in "US" else dtype.name


def generate_feeds(
    signature: Signature,
    shapes: Optional[Mapping[str, Tuple[int, ...]]] = None,
    seed: int = 0,
) -> Feeds:
    """Seeded random inputs: dynamic dims from ``shapes``, batch dims 1.

    A batch dim is a dynamic axis 0, or a dynamic dim named like some input's axis 0
    (``[2, batch, 128]`` for a state beside ``[batch, 512]``). Any other dynamic dim (a
    sequence length, an image side) is never guessed: without ``shapes`` for its input
    it is an :class:`InputError` naming the dim and the ``--shape`` to give.

    Floats are standard normal; integers are drawn from [0, 4) and booleans at random, so
    index-like inputs (token ids, positions) stay in range for any vocabulary.
    """
    shapes = dict(shapes or {})
    unknown = [n for n in shapes if signature.input(n) is None]
    if unknown:
        names = [s.name for s in signature.inputs]
        raise InputError(f"--shape names unknown input(s) {unknown}; the model has {names}")
    rng = np.random.default_rng(seed)
    batch = batch_symbols(signature)
    feeds = {
        s.name: random_array(rng, s, resolve_shape(s, shapes.get(s.name), batch))
        for s in signature.inputs
    }
    validate_feeds(signature, feeds)
    return feeds


def batch_symbols(signature: Signature) -> Set[str]:
    """Names of the inputs' dynamic axis-0 dims (unnamed or ``?`` dims match nothing)."""
    return {
        s.shape[0]
        for s in signature.inputs
        if s.shape and isinstance(s.shape[0], str) and s.shape[0] not in ("", "?")
    }


def resolve_shape(
    spec: TensorSpec,
    override: Optional[Tuple[int, ...]] = None,
    batch: Optional[Set[str]] = None,
    batch_size: int = 1,
) -> List[int]:
    """``spec``'s shape with its dynamic dims filled: ``override`` (checked against the
    fixed dims), else batch dims ``batch_size``; any other dynamic dim is refused (see
    :func:`generate_feeds`), naming it and the ``--shape`` that would fill it."""
    if override is not None:
        if not dims_compatible(spec.shape, override):
            raise InputError(
                f"--shape {spec.name}: {list(override)} does not fit {spec.shape_text()}",
                input=spec.name,
            )
        return list(override)
    batch = batch if batch is not None else set()
    dims: List[int] = []
    for axis, d in enumerate(spec.shape):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif axis == 0 or (isinstance(d, str) and d in batch):
            dims.append(batch_size)
        else:
            raise dynamic_dim_error(spec, axis)
    return dims


def dynamic_dim_error(spec: TensorSpec, axis: int) -> InputError:
    """A dynamic non-batch dim that generated inputs cannot guess: names it and the fix."""
    dim = spec.shape[axis]
    named = f" ({dim!r})" if isinstance(dim, str) and dim not in ("", "?") else ""
    example = ",".join(_placeholder(spec, i) for i in range(len(spec.shape)))
    return InputError(
        f"input {spec.name!r} {spec.shape_text()}: dimension {axis}{named} is dynamic and "
        f"is not guessed: give real inputs (--inputs/--data) or its size, "
        f"--shape {spec.name}={example}",
        input=spec.name,
        axis=axis,
        expected=list(spec.shape),
    )


def _placeholder(spec: TensorSpec, axis: int) -> str:
    d = spec.shape[axis]
    if isinstance(d, int) and d >= 0:
        return str(d)
    if axis == 0:
        return "1"
    return d.upper() if isinstance(d, str) and d.isidentifier() else f"D{axis}"


def random_array(rng: np.random.Generator, spec: TensorSpec, shape: List[int]) -> np.ndarray:
    """Seeded values of ``spec``'s dtype in ``shape`` (see :func:`generate_feeds`)."""
    if spec.dtype == "str":
        raise InputError(f"input {spec.name!r} is a string tensor: pass it with --inputs")
    dtype = np.dtype(spec.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        return rng.integers(0, 4, size=shape).astype(dtype)
    raise InputError(f"input {spec.name!r}: cannot generate dtype {spec.dtype}; use --inputs")
