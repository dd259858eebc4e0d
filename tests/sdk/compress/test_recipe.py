from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeship.compress import ChainConfig, Dataset, RecipeTable, load_recipe, run_recipe
from edgeship.compress.recipe import Recipe, recipe_from_dict
from edgeship.errors import UsageError
from tests.sdk.compress.conftest import ort_outputs
from tools.zoo.build import Manifest

RECIPE = """
[options]
latency_rounds = 1
latency_runs = 20

[variants.int8]
method = "int8-static"
calibration_samples = 64

[variants.slim-int8]
chain = [
  { method = "prune-channels", sparsity = 0.5, epochs = 1 },
  { method = "int8-static", calibration_samples = 64 },
]
"""


def test_recipe_parsing(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(RECIPE)
    recipe = load_recipe(path)
    names = [n for n, _ in recipe.variants]
    assert names == ["int8", "slim-int8"] and recipe.latency_runs == 20
    assert isinstance(dict(recipe.variants)["slim-int8"], ChainConfig)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no variants"),
        ({"variants": {"base": {"method": "fp16"}}}, "not 'base'"),
        ({"variants": {"a": {"method": "zip"}}}, "variant 'a'"),
        ({"variant": {}}, "unknown table"),
        ({"variants": {"a": {"method": "fp16"}}, "options": {"speed": 1}}, "options"),
    ],
)
def test_bad_recipes(data: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        recipe_from_dict(data)


def test_not_toml(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text("[variants\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_recipe(tmp_path / "r.toml")


def test_run_writes_models_records_and_tables(
    zoo: Manifest, small_train: Dataset, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(
        {
            "options": {"latency_rounds": 1, "latency_runs": 20},
            "variants": {
                "int8": {"method": "int8-static", "calibration_samples": 64},
                "slim-int8": {
                    "chain": [
                        {"method": "prune-channels", "sparsity": 0.5, "epochs": 1},
                        {"method": "int8-static", "calibration_samples": 64},
                    ]
                },
                "fails": {
                    "method": "distill",
                    "epochs": 1,
                    "student": "tests.sdk.compress.models:wrong_student",
                },
            },
        }
    )
    calls: list[tuple[int, int, str]] = []
    table = run_recipe(
        zoo.path("mlp.onnx"),
        recipe,
        small_train,
        tmp_path / "out",
        progress=lambda *a: calls.append(a),
    )
    assert calls[0] == (0, 3, "int8") and calls[-1] == (3, 3, "")
    assert [r.name for r in table.rows] == ["base", "int8", "slim-int8", "fails"]
    base, int8, slim, failed = table.rows
    assert failed.error is not None and "3 outputs per sample" in failed.error
    assert slim.parameters < int8.parameters < base.parameters + 1000
    assert slim.latency_ms is not None and slim.accuracy is not None
    for name in ("int8", "slim-int8"):
        assert (tmp_path / "out" / f"{name}.json").is_file()
        assert ort_outputs(tmp_path / "out" / f"{name}.onnx", small_train.take(2).feeds).shape
    data = json.loads((tmp_path / "out" / "table.json").read_text())
    assert RecipeTable.from_dict(data) == table
    assert (
        "| slim-int8 | prune-channels+int8-static |" in (tmp_path / "out" / "table.md").read_text()
    )


def test_empty_recipe_object_refused() -> None:
    with pytest.raises(UsageError):
        Recipe(())
