"""A small transformer encoder over int64 token ids, trained on real data: the sklearn
digits (the zoo's split), each image's 2×2 cells averaged and quantised to 17 grey levels,
16 tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeship.compress import Dataset

LEVELS = 17
LENGTH = 16
WIDTH = 32
HEADS = 4


class Encoder(nn.Module):
    """Token and position embeddings → two ``nn.TransformerEncoderLayer`` → mean → class."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(LEVELS, WIDTH)
        self.positions = nn.Embedding(LENGTH, WIDTH)
        layer = nn.TransformerEncoderLayer(WIDTH, HEADS, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        where = torch.arange(ids.shape[1], device=ids.device)
        return self.head(self.encoder(self.tokens(ids) + self.positions(where)).mean(dim=1))


def encoder() -> nn.Module:
    return Encoder()


def tokens(images: Dataset) -> Dataset:
    """Digits images (N, 1, 8, 8) in [0, 1] → (N, 16) int64 grey levels, labels kept."""
    x = next(iter(images.feeds.values())).reshape(len(images), 4, 2, 4, 2).mean(axis=(2, 4))
    ids = np.rint(x.reshape(len(images), -1) * (LEVELS - 1)).astype(np.int64)
    return Dataset({"ids": ids}, images.labels)


def train(data: Dataset, path: Path, epochs: int = 10) -> Path:
    """Train an :class:`Encoder` on ``data`` (ids, labels); its state dict saved at ``path``."""
    torch.manual_seed(0)
    model = Encoder()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids, labels = torch.from_numpy(data.feeds["ids"]), torch.from_numpy(data.labels)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(ids)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(ids[batch]), labels[batch]).backward()
            opt.step()
    torch.save(model.eval().state_dict(), path)
    return path
