"""Importance scores and selection: pure numpy, no graph or I/O (trivially testable)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "block_norm",
    "channel_norm",
    "keep_count",
    "magnitude",
    "spread_over_rows",
    "top_indices",
    "weight_masks",
]


def magnitude(weight: np.ndarray) -> np.ndarray:
    return np.abs(weight)


def spread_over_rows(weight: np.ndarray, row_scores: np.ndarray, axis: int) -> np.ndarray:
    """Per-weight scores from per-row (output unit) sensitivities: each row's score is shared
    among its weights in proportion to their magnitude."""
    w = np.moveaxis(np.abs(weight), axis, 0)
    share = w / np.maximum(w.reshape(len(w), -1).sum(axis=1), 1e-12).reshape(
        (-1,) + (1,) * (w.ndim - 1)
    )
    return np.moveaxis(share * row_scores.reshape((-1,) + (1,) * (w.ndim - 1)), 0, axis)


def weight_masks(
    scores: Mapping[str, np.ndarray], sparsity: float, scope: str
) -> dict[str, np.ndarray]:
    """Boolean keep-masks removing the ``sparsity`` fraction of lowest scores, either across
    all layers (``global``) or within each layer (``layer``). Exact counts, ties by order."""
    if scope == "layer":
        return {name: _mask_one(s, sparsity) for name, s in scores.items()}
    flat = np.concatenate([s.ravel() for s in scores.values()])
    drop = int(np.floor(sparsity * flat.size))
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[:drop]] = False
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = keep[start : start + s.size].reshape(s.shape)
        start += s.size
    return masks


def _mask_one(score: np.ndarray, sparsity: float) -> np.ndarray:
    drop = int(np.floor(sparsity * score.size))
    keep = np.ones(score.size, dtype=bool)
    keep[np.argsort(score.ravel(), kind="stable")[:drop]] = False
    return keep.reshape(score.shape)


def channel_norm(weight: np.ndarray, axis: int, p: int) -> np.ndarray:
    """L1 (p=1) or L2 (p=2) norm of each slice along ``axis`` (one per output channel)."""
    return block_norm(weight, weight.shape[axis], axis, p)


def block_norm(weight: np.ndarray, blocks: int, axis: int, p: int) -> np.ndarray:
    """L1 (p=1) or L2 (p=2) norm of each of ``blocks`` equal runs of slices along ``axis``
    (one per attention head when the axis holds heads × head_dim)."""
    w = np.moveaxis(weight, axis, 0).reshape(blocks, -1)
    return np.abs(w).sum(axis=1) if p == 1 else np.sqrt((w * w).sum(axis=1))


def keep_count(channels: int, sparsity: float, block: int = 1) -> int:
    """Channels kept when removing ``sparsity`` of them: at least one. With ``block``, a
    layer of several ``block`` of channels keeps a multiple of it too (the nearest, at
    least one block); one of ``block`` channels or fewer keeps what ``sparsity`` says."""
    keep = max(1, round(channels * (1.0 - sparsity)))
    if block > 1 and channels % block == 0 and channels > block:
        keep = max(block, round(keep / block) * block)
    return keep


def top_indices(scores: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` highest scores, in ascending index order."""
    return np.sort(np.argsort(-scores, kind="stable")[:keep])
