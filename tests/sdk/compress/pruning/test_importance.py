from __future__ import annotations

import numpy as np

from edgeship.compress.pruning import importance


def test_global_masks_remove_exactly_the_lowest_scores() -> None:
    scores = {"a": np.array([[1.0, 5.0], [3.0, 7.0]]), "b": np.array([2.0, 4.0, 6.0, 8.0])}
    masks = importance.weight_masks(scores, 0.5, "global")
    assert masks["a"].tolist() == [[False, True], [False, True]]
    assert masks["b"].tolist() == [False, False, True, True]


def test_layer_masks_prune_each_layer_alike() -> None:
    scores = {"a": np.arange(10.0), "b": np.arange(100.0, 90.0, -1)}
    masks = importance.weight_masks(scores, 0.3, "layer")
    assert [int((~m).sum()) for m in masks.values()] == [3, 3]


def test_channel_norms_keep_counts_and_top_indices() -> None:
    w = np.array([[1.0, -1.0], [3.0, 4.0], [0.0, 0.5]])
    assert importance.channel_norm(w, 0, 1).tolist() == [2.0, 7.0, 0.5]
    assert importance.channel_norm(w, 0, 2).tolist() == [np.sqrt(2), 5.0, 0.5]
    assert importance.keep_count(64, 0.5) == 32
    assert importance.keep_count(3, 0.99) == 1
    assert importance.keep_count(24, 0.25, block=8) == 16  # 18 kept: the nearest block
    assert importance.keep_count(16, 0.9, block=8) == 8  # at least one block
    assert importance.keep_count(30, 0.5, block=8) == 15  # not a multiple: as asked
    assert importance.keep_count(8, 0.5, block=8) == 4  # one block: as asked
    assert importance.top_indices(np.array([0.1, 0.9, 0.5, 0.7]), 2).tolist() == [1, 3]


def test_spread_over_rows_shares_by_magnitude() -> None:
    w = np.array([[1.0, 3.0], [2.0, 2.0]])
    out = importance.spread_over_rows(w, np.array([4.0, 1.0]), 0)
    assert np.allclose(out, [[1.0, 3.0], [0.5, 0.5]])
