"""ONNX's backend node cases through ``local`` (tools/bench/onnx_backend_cases.py runs all
of them): a fixed subset with every StringNormalizer case, a case per dtype and a case
without inputs, each giving the reference outputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeship.targets.local import LocalTarget
from tools.bench.onnx_backend_cases import cases, run_cases

STRINGS = [
    "test_strnormalizer_nostopwords_nochangecase",
    "test_strnormalizer_export_monday_casesensintive_nochangecase",
    "test_strnormalizer_export_monday_casesensintive_lower",
    "test_strnormalizer_export_monday_casesensintive_upper",
    "test_strnormalizer_export_monday_empty_output",
    "test_strnormalizer_export_monday_insensintive_upper_twodim",
    "test_string_concat_zero_dimensional",
]
BY_DTYPE = {
    "bool": "test_and2d",
    "int8": "test_add_int8",
    "int16": "test_add_int16",
    "int32": "test_bitshift_right_int32",
    "int64": "test_max_int64",
    "uint8": "test_add_uint8",
    "uint16": "test_add_uint16",
    "uint32": "test_add_uint32",
    "uint64": "test_add_uint64",
    "float16": "test_attention_4d_fp16",
    "float32": "test_abs",
    "float64": "test_einsum_sum",
}
NO_INPUTS = ["test_constant"]
SUBSET = STRINGS + list(BY_DTYPE.values()) + NO_INPUTS


@pytest.fixture(scope="module")
def target() -> Iterator[LocalTarget]:
    with LocalTarget() as local:
        yield local


def test_the_subset_gives_the_reference_outputs(target: LocalTarget, tmp_path: Path) -> None:
    tally = run_cases(target, cases(SUBSET), tmp_path)
    assert tally.failed == {} and tally.skipped == {}
    assert sorted(tally.passed) == sorted(SUBSET)
