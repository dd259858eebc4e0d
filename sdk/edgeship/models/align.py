"""Pairing a source model's tensors with a converted model's: names, dtypes, layout.

Converters rename tensors (LiteRT prefixes ``serving_default_``), narrow dtypes (int64 to
int32) and may change layout (NCHW to NHWC). Each difference found is said in a note;
a layout change is undone for the comparison and reported, never silently absorbed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from edgeship.core.errors import ConversionError
from edgeship_runtime.signature import Dim, Signature, dims_compatible, format_shape

__all__ = [
    "MAX_PERMUTED_RANK",
    "align_inputs",
    "align_outputs",
    "find_permutation",
    "match_names",
    "normalize_name",
]

_PREFIXES = ("serving_default_",)
_SUFFIXES = (":0", "_output")
MAX_PERMUTED_RANK = 6


def normalize_name(name: str) -> str:
    """``serving_default_logits_output`` and ``logits:0`` both become ``logits``."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def match_names(source: Sequence[str], result: Sequence[str], what: str) -> list[tuple[str, str]]:
    """(source name, result name) pairs: by name, by normalized name, else by position."""
    if len(source) != len(result):
        raise ConversionError(
            f"the converted model has {len(result)} {what}(s) {list(result)}; the source has "
            f"{len(source)} {list(source)}",
            step="verify",
        )
    if set(source) == set(result):
        return [(n, n) for n in source]
    normalized = {normalize_name(r): r for r in result}
    if len(normalized) == len(result) and all(normalize_name(s) in normalized for s in source):
        return [(s, normalized[normalize_name(s)]) for s in source]
    return list(zip(source, result, strict=True))


def find_permutation(
    given: Sequence[int], expected: Sequence[Dim], free_batch: bool = False
) -> tuple[int, ...] | None:
    """An axis order ``p`` with ``given[p]`` fitting ``expected``, axis 0 kept when
    possible; ``free_batch`` lets axis 0 differ (the result runs in fixed-size chunks)."""
    rank = len(given)
    if rank != len(expected) or rank > MAX_PERMUTED_RANK:
        return None
    for perm in itertools.permutations(range(rank)):
        shape = tuple(given[p] for p in perm)
        if _fits(expected, shape, free_batch and perm[0] == 0):
            return perm
    return None


def _fits(expected: Sequence[Dim], shape: tuple[int, ...], free_batch: bool) -> bool:
    if free_batch and shape:
        first = expected[0]
        rows_ok = not isinstance(first, int) or first <= 0 or shape[0] % first == 0
        return rows_ok and dims_compatible(tuple(expected[1:]), shape[1:])
    return dims_compatible(tuple(expected), shape)


def align_inputs(
    feeds: Mapping[str, np.ndarray], source: Signature, result: Signature
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The source's feeds renamed, cast and (if the result's layout differs) transposed."""
    pairs = match_names([s.name for s in source.inputs], [s.name for s in result.inputs], "input")
    out: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for name, result_name in pairs:
        spec = result.input(result_name)
        assert spec is not None
        array = feeds[name]
        if result_name != name:
            notes.append(f"input {name!r} is {result_name!r} in the result")
        if array.dtype.name != spec.dtype and spec.dtype != "str":
            notes.append(f"input {name!r}: {array.dtype.name} in the source, {spec.dtype} here")
            array = array.astype(spec.dtype)
        perm = find_permutation(array.shape, spec.shape, free_batch=_is_chunked(spec.shape))
        if perm is None:
            raise ConversionError(
                f"input {name!r}: the source takes {list(array.shape)}, the result "
                f"{format_shape(spec.shape)}; no axis order maps one onto the other",
                step="verify",
            )
        if perm != tuple(range(array.ndim)):
            notes.append(
                f"LAYOUT CHANGED: input {name!r} {list(array.shape)} is fed as "
                f"{format_shape(spec.shape)} (axes {list(perm)})"
            )
            array = np.ascontiguousarray(array.transpose(perm))
        out[result_name] = array
    return out, notes


def _is_chunked(shape: Sequence[Dim]) -> bool:
    return bool(shape) and isinstance(shape[0], int) and shape[0] >= 1


def align_outputs(
    reference: Mapping[str, np.ndarray],
    produced: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The result's outputs under the source's names, transposed back if its layout differs."""
    aligned: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for name, result_name in pairs:
        ref, got = reference[name], produced[result_name]
        if got.shape != ref.shape and got.size == ref.size:
            perm = find_permutation(got.shape, ref.shape)
            if perm is not None:
                notes.append(
                    f"LAYOUT CHANGED: output {name!r} is {list(got.shape)} in the result, "
                    f"{list(ref.shape)} in the source (axes {list(perm)})"
                )
                got = got.transpose(perm)
        aligned[name] = got
    return aligned, notes
