"""Training and recipe progress: each distillation epoch on the command's line, on a
terminal only; a recipe's bar with the epochs of the variant that trains."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from edgeship.cli.compress_cmd import _Variants
from edgeship.cli.main import main
from edgeship.compress.training.loop import EpochDone
from edgeship.core.progress import CLEAR_LINE, StatusLine
from tools.zoo.build import Manifest


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _shown(err: str, prefix: str) -> list[str]:
    """What the line showed under ``prefix``, each text once: a ticking entry is redrawn
    every second with its seconds (`` · 3 s``), which are dropped here."""
    texts = [f.split(" · ")[0].rstrip("\n") for f in err.split(CLEAR_LINE) if f.startswith(prefix)]
    return [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]


@pytest.mark.parametrize("stderr", ["terminal", "json"])
def test_distill_shows_each_epoch_and_its_loss(
    zoo: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str
) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.setenv("COLUMNS", "200")
    args = [str(zoo.path("mlp.onnx")), "--method", "distill", "--epochs", "2", "--width", "0.5"]
    args += ["--data", str(zoo.path("digits_test.npz")), "--out", str(tmp_path / "s.onnx")]
    rc = main(["compress", *args, *(["--json"] if stderr == "json" else [])])
    assert rc == 0, err.getvalue()
    if stderr == "json":
        assert "epoch" not in err.getvalue()
        return
    frames = [f for f in err.getvalue().split(CLEAR_LINE) if f.startswith("distill: epoch")]
    assert [f.split(":")[1] for f in frames] == [" epoch 1 of 2", " epoch 2 of 2"]
    losses = [float(f.split("loss ")[1].split(",")[0]) for f in frames]
    assert all(loss > 0 for loss in losses)  # real cross-entropy/KL of a real student
    assert "held-out accuracy " in frames[-1]


@pytest.mark.latency_budget  # channel pruning is timed: at compress's defaults, end to end
@pytest.mark.parametrize("method", ["prune-channels", "prune"])
def test_fine_tuning_after_pruning_shows_each_epoch(
    zoo: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.setenv("COLUMNS", "200")
    args = [str(zoo.path("mlp.onnx")), "--method", method, "--sparsity", "0.25"]
    args += ["--epochs", "2", "--data", str(zoo.path("digits_test.npz"))]
    rc = main(["compress", *args, "--out", str(tmp_path / "p.onnx")])
    assert rc == 0, err.getvalue()
    frames = _shown(err.getvalue(), f"{method}: ")
    epochs = [f for f in frames if f.startswith(f"{method}: epoch")]
    assert [f.split(":")[1] for f in epochs] == [" epoch 1 of 2", " epoch 2 of 2"]
    # fine-tuning holds nothing out by default: its metric is not called held-out
    assert "training-set accuracy " in epochs[-1]
    assert epochs[0].endswith("; epoch 2 running") and epochs[-1].endswith("%")
    # the minute around the epochs has its steps, in order, each ticking its seconds
    expected = [
        f"{method}: running {method}...",
        f"{method}: epoch 1 of 2",
        f"{method}: epoch 2 of 2",
        f"{method}: verifying the result on local...",
        f"{method}: comparing its outputs with the base's on ",
    ]
    if method == "prune-channels":  # structured: always timed
        expected.append(f"{method}: timing batch-1 latency on local (3 rounds of at least 0.2 s")
    assert [next(e for e in expected if f.startswith(e)) for f in frames] == expected
    assert " · " in err.getvalue().split("verifying")[1].split(CLEAR_LINE)[0]
    assert err.getvalue().endswith("\n")


def test_a_recipe_bar_carries_the_training_variants_epochs() -> None:
    out = Terminal()
    with StatusLine(out, width=200) as line:
        variants = _Variants(line)
        variants.start(0, 2, "int8")
        variants.start(1, 2, "small")
        variants.epoch(EpochDone(epoch=1, epochs=3, loss=0.5, metric="accuracy", value=0.9))
        variants.start(2, 2, "")
    frames = [f for f in out.getvalue().split(CLEAR_LINE) if f]
    assert frames[0] == "[" + "." * 30 + "] 0/2 int8"
    assert frames[2] == f"[{'#' * 15}{'.' * 15}] 1/2 small: epoch 1 of 3: loss 0.5000, " + (
        "held-out accuracy 90.00%; epoch 2 running · 0 s"
    )
    assert frames[-1] == "[" + "#" * 30 + "] 2/2 done\n"


def test_into_a_pipe_a_recipe_writes_a_line_per_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    variants = _Variants(StatusLine(err))
    variants.start(0, 2, "int8")
    variants.epoch(EpochDone(epoch=1, epochs=3, loss=0.5, metric="accuracy", value=0.9))
    variants.start(2, 2, "")
    assert err.getvalue() == "[1/2] int8\n"
