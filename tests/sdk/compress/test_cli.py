"""``edgeship compress``: the command module's parser and handler, and a real subprocess
round trip through the ``edgeship`` entry point."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeship.cli import compress_cmd, main
from edgeship.compress import CompressionReport
from edgeship.compress._api import SEARCH_CALLS
from edgeship.core.errors import UsageError
from tools.zoo.build import Manifest


def _parse(*argv: str) -> argparse.Namespace:
    return main.build_parser().parse_args(["compress", *argv])


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeship.cli.main", "compress", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_options_become_configs() -> None:
    ns = _parse(
        "m.onnx",
        "--method",
        "prune",
        "--sparsity",
        "0.7",
        "--importance",
        "gradient",
        "--scope",
        "layer",
        "--epochs",
        "2",
        "--out",
        "o.onnx",
    )
    config = compress_cmd.config_from_args(ns)
    assert (config.sparsity, config.importance, config.scope) == (0.7, "gradient", "layer")
    assert config.fine_tune.epochs == 2
    ns = _parse(
        "m.onnx",
        "--method",
        "int8-static",
        "--calibration",
        "entropy",
        "--exclude-node",
        "a",
        "--per-tensor",
        "--out",
        "o.onnx",
    )
    config = compress_cmd.config_from_args(ns)
    assert config.exclude_nodes == ("a",) and not config.per_channel
    ns = _parse("m.onnx", "--method", "prune-channels", "--sparsity-search", "--out", "o.onnx")
    assert compress_cmd.config_from_args(ns).sparsity_search
    ns = _parse("m.onnx", "--method", "prune-channels", "--out", "o.onnx")
    assert not compress_cmd.config_from_args(ns).sparsity_search


def test_state_dict_needs_arch() -> None:
    ns = _parse("m.pt", "--method", "prune", "--out", "o.onnx")
    with pytest.raises(UsageError, match="--arch"):
        compress_cmd.model_from_args(ns)


def test_handler_prints_the_record_as_json(
    zoo: Manifest, test_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = _parse(
        str(zoo.path("mlp.onnx")),
        "--method",
        "prune",
        "--sparsity",
        "0.5",
        "--data",
        str(test_npz),
        "--out",
        str(tmp_path / "p.onnx"),
        "--json",
    )
    assert ns.handler(ns) == 0
    out, err = capsys.readouterr()
    report = CompressionReport.from_dict(json.loads(out))
    assert "next:" not in err  # not with --json
    assert report.method == "prune" and report.model.path == str(tmp_path / "p.onnx")


def test_subprocess_round_trip_and_errors(zoo: Manifest, test_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    done = _cli(
        str(zoo.path("mlp.onnx")),
        "--method",
        "int8-dynamic",
        "--data",
        str(test_npz),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "int8-dynamic:" in done.stdout and "accuracy" in done.stdout and out.is_file()
    next_line = f"next: edgeship ab {zoo.path('mlp.onnx')} {out}"
    assert done.stderr.rstrip().splitlines()[-1] == next_line

    bad = _cli(
        str(zoo.path("cnn.onnx")),
        "--method",
        "prune",
        "--sparsity",
        "1",
        "--out",
        str(tmp_path / "x.onnx"),
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: sparsity must be in [0, 1); got 1.0"

    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, image=np.zeros((2, 1, 8, 8), np.float32))
    bad = _cli(
        str(zoo.path("cnn.onnx")),
        "--method",
        "int8-static",
        "--data",
        str(wrong),
        "--out",
        str(tmp_path / "y.onnx"),
        "--json",
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: data does not fit the model: missing input")
    assert json.loads(bad.stdout)["error"]["type"] == "InputError"


def test_recipe_through_the_handler(
    zoo: Manifest, test_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        "[options]\nlatency_rounds = 1\nlatency_runs = 10\nallow_degraded = true\n\n"
        '[variants.half]\nmethod = "int8-dynamic"\n'
    )
    ns = _parse(
        str(zoo.path("mlp.onnx")),
        "--recipe",
        str(recipe),
        "--data",
        str(test_npz),
        "--out",
        str(tmp_path / "variants"),
    )
    assert ns.handler(ns) == 0
    captured = capsys.readouterr()
    assert "| half | int8-dynamic |" in captured.out
    assert "[1/1] half" in captured.err  # not a terminal: one progress line per variant
    variant = tmp_path / "variants" / "half.onnx"
    assert f"next: edgeship ab {zoo.path('mlp.onnx')} {variant}\n" in captured.err
    assert (tmp_path / "variants" / "table.md").is_file()
    assert (tmp_path / "variants" / "half.onnx").is_file()


def _summary(zoo: Manifest, tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    ns = _parse(str(zoo.path("mlp.onnx")), "--out", str(tmp_path / "c.onnx"), *argv)
    assert ns.handler(ns) == 0
    return capsys.readouterr().out


def test_accuracy_is_said_only_against_labels_agreement_against_the_base(
    zoo: Manifest, test_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with np.load(test_npz) as npz:
        inputs, labels = npz["input"], npz["labels"]
    labelled = _summary(zoo, tmp_path, capsys, "--method", "int8-dynamic", "--data", str(test_npz))
    n = len(labels) - SEARCH_CALLS  # all but the rows the fallback's search reads
    assert f"measured on {n} samples: {n} of {len(labels)} samples of --data" in labelled
    row = next(line for line in labelled.splitlines() if line.startswith("accuracy (vs labels)"))
    assert row.count(f"] n={n}") == 2  # base and compressed, each with its interval
    assert "vs base: top-1 agreement " in labelled and f"] n={n}" in labelled
    assert "accuracy is on labels of --data" in labelled  # --data, not --eval-data
    bare = tmp_path / "bare.npz"
    np.savez(bare, input=inputs)
    unlabelled = _summary(zoo, tmp_path, capsys, "--method", "int8-dynamic", "--data", str(bare))
    assert "accuracy" not in unlabelled.replace(str(tmp_path), "")  # the path has the word
    assert "vs base: top-1 agreement " in unlabelled


def test_few_held_out_samples_are_said_with_their_interval(
    zoo: Manifest, test_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with np.load(test_npz) as npz:
        few = tmp_path / "few.npz"
        np.savez(few, input=npz["input"][:100], labels=npz["labels"][:100])
    text = _summary(zoo, tmp_path, capsys, "--method", "int8-static", "--data", str(few))
    held = round(100 * 0.2)
    assert f"measured on {held} samples" in text
    note = next(line for line in text.splitlines() if "judged on only" in line)
    assert note.startswith(f"note: judged on only {held} samples: ") and "Wilson" in note
