from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgeship.cli.main import main
from edgeship.compress import ChainConfig, Dataset, RecipeReport, load_recipe, run_recipe
from edgeship.compress._recipe import Recipe, recipe_from_dict
from edgeship.compress.config import AnyConfig, config_from_dict, config_to_dict
from edgeship.core.errors import UsageError
from edgeship.models.estimate import share_text, wilson
from tests import models
from tests.sdk.compress.conftest import CountingTarget, ort_outputs
from tools.zoo.build import Manifest

SHIPPED = Path(__file__).resolve().parents[3] / "docs" / "variants.toml"

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
    result = run_recipe(
        zoo.path("mlp.onnx"),
        recipe,
        small_train,
        tmp_path / "out",
        progress=lambda *a: calls.append(a),
    )
    table = result.report
    assert result.directory == tmp_path / "out"
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
    assert RecipeReport.from_dict(data) == table
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert "| slim-int8 | prune-channels+int8-static |" in markdown
    held = len(small_train) - 64  # all the 64-row calibration leaves, to judge int8 on
    assert slim.samples == round(len(small_train) * 0.2)  # training reads all it gets
    assert int8.samples == held and int8.accuracy is not None and int8.top1_agreement is not None
    assert int8.accuracy_ci == wilson(round(int8.accuracy * held), held)
    assert int8.top1_agreement_ci == wilson(round(int8.top1_agreement * held), held)
    assert base.top1_agreement == 1.0 and base.top1_agreement_ci is None  # no estimate
    assert "| accuracy (vs labels) | agreement (vs base) |" in markdown
    assert share_text(int8.top1_agreement, held, int8.top1_agreement_ci) in markdown
    assert "95 % Wilson interval" in markdown
    assert table.input_shapes == {"input": [1, 1, 8, 8]}  # what the latencies were measured on
    assert markdown.startswith("p50 ms at batch 1 on input 1×1×8×8\n")


def test_output_kinds_reach_every_variant_from_the_recipe_and_the_command_line(
    tmp_path: Path,
) -> None:
    base = models.two_output_model(tmp_path / "two.onnx")
    variants = {"pruned": {"method": "prune", "sparsity": 0.5}}
    options = {"latency_rounds": 1, "latency_runs": 5}
    recipe = recipe_from_dict(
        {"options": {**options, "output_kinds": {"mask": "flags"}}, "variants": variants}
    )
    assert recipe.guard().output_kinds == {"mask": "flags"}
    report = run_recipe(base, recipe, None, tmp_path / "out").report
    assert "collapsed" in str(report.rows[0].error)  # the mask is all zeros: refused
    with pytest.raises(UsageError, match="unknown kind 'blob'"):
        recipe_from_dict({"options": {"output_kinds": {"mask": "blob"}}, "variants": variants})
    path = tmp_path / "r.toml"
    path.write_text(
        '[options]\nlatency_rounds = 1\nlatency_runs = 5\n[variants.pruned]\nmethod = "prune"\n'
    )
    argv = ["compress", str(base), "--recipe", str(path), "--allow-degraded"]
    assert main([*argv, "--output-kind", "mask=flags", "--out", str(tmp_path / "cli")]) == 0
    written = json.loads((tmp_path / "cli" / "pruned.json").read_text())
    mask = next(v for v in written["outputs"] if v["output"] == "mask")
    assert (mask["kind"], mask["inferred"]) == ("flags", False)


def test_empty_recipe_object_refused() -> None:
    with pytest.raises(UsageError):
        Recipe(())


def test_a_recipe_that_needs_no_data_runs_without_it_in_one_runtime(
    zoo: Manifest, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(
        {
            # 10 runs time nothing reliably: a variant slower by noise is kept, not refused
            "options": {"latency_rounds": 1, "latency_runs": 10, "allow_degraded": True},
            "variants": {"half": {"method": "fp16"}, "dyn": {"method": "int8-dynamic"}},
        }
    )
    with CountingTarget() as target:
        report = run_recipe(zoo.path("mlp.onnx"), recipe, None, tmp_path, target).report
        assert target.starts == 1  # two variants: two verifications, two latency runs
    assert [r.name for r in report.rows] == ["base", "half", "dyn"]
    assert all(r.error is None and r.accuracy is None for r in report.rows)
    assert all(r.latency_ms is not None for r in report.rows)


def test_a_recipe_that_needs_data_says_which_variants(tmp_path: Path) -> None:
    recipe = recipe_from_dict(
        {
            "variants": {
                "half": {"method": "fp16"},
                "int8": {"method": "int8-static"},
                "kd": {"method": "distill"},
            }
        }
    )
    with pytest.raises(UsageError, match=r"variants int8 \(static INT8 calibration\); kd "):
        run_recipe(tmp_path / "never-read.onnx", recipe, None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_shipped_recipe_parses() -> None:
    recipe = load_recipe(SHIPPED)
    names = [name for name, _ in recipe.variants]
    assert names == ["int8-static", "int8-dynamic", "fp16", "slim", "slim-int8"]
    assert isinstance(dict(recipe.variants)["slim-int8"], ChainConfig)


def _one_epoch(config: AnyConfig) -> AnyConfig:
    """``config`` with each step's fine-tuning, if it has any, cut to one epoch."""
    flat = config_to_dict(config)
    for step in flat.get("chain", [flat]):
        if step.get("epochs"):
            step["epochs"] = 1
    return config_from_dict(flat)


@pytest.mark.slow
def test_the_shipped_recipe_runs(zoo: Manifest, train_npz: Path, tmp_path: Path) -> None:
    """As docs/recipes.md has it, on the README's model and data (fewer latency runs, one
    epoch of fine-tuning instead of three: the variants' accuracy is judged all the same)."""
    shipped = load_recipe(SHIPPED)
    variants = tuple((name, _one_epoch(config)) for name, config in shipped.variants)
    recipe = dataclasses.replace(shipped, variants=variants, latency_rounds=1, latency_runs=20)
    report = run_recipe(zoo.path("cnn.onnx"), recipe, train_npz, tmp_path).report
    assert [r.name for r in report.rows] == ["base", *(n for n, _ in recipe.variants)]
    # a variant slower than the base on this CPU is refused, saying so (int8-dynamic on
    # x86 without VNNI); nothing else may fail
    refused = [r.error for r in report.rows if r.error is not None]
    assert all("× slower than its base on local" in e for e in refused), report.to_markdown()
    rows = {r.name: r for r in report.rows if r.error is None}
    assert rows["slim"].parameters < rows["base"].parameters
    assert all(r.accuracy is not None and r.accuracy > 0.8 for r in rows.values())
