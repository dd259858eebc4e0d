"""The sparsity search of structured (and weight) pruning, on the zoo's trained MLP with real ONNX
Runtime sessions: a ceiling that collapses is backed off to one that holds, a ceiling
that holds is kept after one try, and when nothing holds the refusal says what was tried."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgeship.compress import (
    ChainConfig,
    ChannelPruneConfig,
    CompressOptions,
    Dataset,
    GuardPolicy,
    PruneConfig,
    QuantizeConfig,
    compress,
    prune,
    prune_channels,
)
from edgeship.compress.guard import FidelityCollapse
from edgeship.compress.pruning.channels import CHANNEL_BLOCK
from edgeship.compress.pruning.importance import keep_count
from edgeship.compress.pruning.sparsity_search import MAX_TRIES
from edgeship.core.errors import UsageError
from edgeship.models.kinds import Limits
from tests.sdk.compress.conftest import accuracy
from tools.zoo.build import Manifest

ROWS = 120  # 96 rows for the method (16 of them searched on), 24 held out to judge


@pytest.fixture(scope="module")
def rows(test_data: Dataset) -> Dataset:
    return test_data.take(ROWS)


def test_a_ceiling_that_collapses_is_backed_off_to_one_that_holds(
    zoo: Manifest, rows: Dataset, test_data: Dataset, tmp_path: Path
) -> None:
    config = ChannelPruneConfig(0.9, sparsity_search=True)
    result = prune_channels(zoo.path("mlp.onnx"), config, rows, tmp_path / "s.onnx")
    rec = result.report
    searched = rec.details["sparsity_search"]
    tries = searched["tries"]
    assert searched["asked"] == 0.9 and tries[0]["sparsity"] == 0.9 and tries[0]["collapsed"]
    assert 2 <= len(tries) <= MAX_TRIES
    kept = searched["kept"]
    assert 0 < kept < 0.9 and rec.details["sparsity"] == kept
    assert kept == max(t["sparsity"] for t in tries if not t["collapsed"])
    # the file is the kept sparsity's: its layers, its size
    assert rec.details["layers"]["/1/Gemm"]["kept"] == keep_count(1024, kept, CHANNEL_BLOCK)
    assert rec.model.parameters < rec.base.parameters
    note = rec.notes[0]
    assert note.startswith(f"sparsity search: 0.9 collapsed on {searched['searched_on']}")
    assert f"{kept:g} holds" in note and f"{len(tries)} tries" in note
    assert accuracy(result.path, test_data) >= 0.85


def test_a_ceiling_that_holds_is_kept_after_one_try(
    zoo: Manifest, rows: Dataset, tmp_path: Path
) -> None:
    config = ChannelPruneConfig(0.2, sparsity_search=True)
    rec = prune_channels(zoo.path("mlp.onnx"), config, rows, tmp_path / "s.onnx").report
    searched = rec.details["sparsity_search"]
    assert searched["kept"] == 0.2 == rec.details["sparsity"]
    assert [t["sparsity"] for t in searched["tries"]] == [0.2]
    assert rec.notes[0].startswith("sparsity search: 0.2 holds on ") and "1 try" in rec.notes[0]
    assert rec.details["layers"]["/1/Gemm"]["kept"] == keep_count(1024, 0.2, CHANNEL_BLOCK)


def test_when_nothing_holds_the_refusal_says_what_was_tried(
    zoo: Manifest, rows: Dataset, tmp_path: Path
) -> None:
    exacting = GuardPolicy(limits=Limits(min_cosine=0.999999))
    config = ChannelPruneConfig(0.5, sparsity_search=True)
    with pytest.raises(FidelityCollapse) as caught:
        prune_channels(
            zoo.path("mlp.onnx"), config, rows, tmp_path / "s.onnx", CompressOptions(guard=exacting)
        )
    message = str(caught.value)
    assert "the sparsity search found no sparsity up to 0.5 that holds on" in message
    assert f"{MAX_TRIES} tries (0.5 collapsed, 0.25 collapsed" in message
    assert "\n" not in message and not (tmp_path / "s.onnx").exists()
    assert "lower --sparsity" not in message  # searched down already: not suggested
    kept = CompressOptions(guard=replace(exacting, allow_degraded=True))
    rec = prune_channels(zoo.path("mlp.onnx"), config, rows, tmp_path / "s.onnx", kept).report
    assert rec.details["sparsity"] == 0.5 == rec.details["sparsity_search"]["kept"]
    note = next(n for n in rec.notes if n.startswith("sparsity search:"))
    assert note.startswith("sparsity search: no sparsity up to 0.5 holds on ")
    assert "the 0.5 asked is kept for the final judgement" in note


def test_without_the_search_the_sparsity_asked_is_the_one_in_the_details(
    zoo: Manifest, rows: Dataset, tmp_path: Path
) -> None:
    rec = prune_channels(
        zoo.path("mlp.onnx"), ChannelPruneConfig(0.3), rows, tmp_path / "s.onnx"
    ).report
    assert rec.details["sparsity"] == 0.3 and "sparsity_search" not in rec.details
    assert not any(n.startswith("sparsity search") for n in rec.notes)


def test_the_search_is_refused_in_a_chain(zoo: Manifest, rows: Dataset, tmp_path: Path) -> None:
    chain = ChainConfig(
        (ChannelPruneConfig(0.5, sparsity_search=True), QuantizeConfig("int8-dynamic"))
    )
    with pytest.raises(UsageError, match="runs on prune-channels alone, not as a step"):
        compress(zoo.path("mlp.onnx"), chain, rows, tmp_path / "c.onnx")


def test_without_data_the_search_judges_on_generated_inputs(zoo: Manifest, tmp_path: Path) -> None:
    config = ChannelPruneConfig(0.2, sparsity_search=True)
    rec = prune_channels(zoo.path("mlp.onnx"), config, None, tmp_path / "s.onnx").report
    searched = rec.details["sparsity_search"]
    assert "generated inputs (seeds" in searched["searched_on"]
    assert searched["kept"] == rec.details["sparsity"] and searched["tries"]


def test_weight_pruning_searches_its_sparsity_the_same_way(
    zoo: Manifest, rows: Dataset, tmp_path: Path
) -> None:
    """Unstructured pruning removes no parameter, only weights: the search backs off a
    ceiling that zeroes too many of them (per layer, without fine-tuning)."""
    config = PruneConfig(0.98, scope="layer", sparsity_search=True)
    rec = prune(zoo.path("mlp.onnx"), config, rows, tmp_path / "w.onnx").report
    searched = rec.details["sparsity_search"]
    assert searched["tries"][0]["sparsity"] == 0.98 and searched["tries"][0]["collapsed"]
    kept = searched["kept"]
    assert 0 < kept < 0.98 and rec.details["sparsity"] == kept
    assert abs(rec.details["weight_sparsity"] - kept) < 0.01  # the file is the kept one's
    assert rec.notes[0].startswith("sparsity search: 0.98 collapsed on ")
    with pytest.raises(UsageError, match=r"an accuracy budget .* or the sparsity search"):
        PruneConfig(0.5, accuracy_budget_pt=2.0, sparsity_search=True)
