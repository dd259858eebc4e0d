"""Torch architectures of the demo zoo.

Both models take (N, 1, 8, 8) float32 digits scaled to [0, 1] and return
(N, 10) logits. Factories seed their own init so the same call always yields
the same weights without disturbing the caller's global RNG state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

INPUT_SHAPE = (1, 8, 8)
NUM_CLASSES = 10
DEFAULT_SEED = 0


def _seeded(seed: int, make: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under a private RNG fork so init is reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def mlp(seed: int = DEFAULT_SEED) -> nn.Module:
    """Dense baseline, 64 -> 1024 -> 512 -> 10 (~0.6 MMAC): wide enough that its
    arithmetic, not the per-call overhead, sets the batch-1 latency."""
    return _seeded(
        seed,
        lambda: nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 1024),
            nn.ReLU(),
            nn.Linear(1024, 512),
            nn.ReLU(),
            nn.Linear(512, NUM_CLASSES),
        ),
    )


CNN_WIDTH = 96


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    """Conv3x3 + BatchNorm at full 8x8 resolution, where the MACs are."""
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.BatchNorm2d(c_out)]


class Residual(nn.Module):
    """A ResNet basic block, ``relu(x + bn(conv(relu(bn(conv(x))))))``: its channels are
    tied to its input's, the pattern structured pruning must keep consistent."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(channels, channels), nn.ReLU(), *_conv_bn(channels, channels)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def cnn(seed: int = DEFAULT_SEED) -> nn.Module:
    """A small ResNet: a stem and two residual blocks of 96 channels at 8x8 (~21 MMAC per
    image), heavy enough that batch-1 latency is compute-bound, with two equal halves."""
    c = CNN_WIDTH
    return _seeded(
        seed,
        lambda: nn.Sequential(
            *_conv_bn(1, c),
            nn.ReLU(),
            Residual(c),
            Residual(c),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c * 4 * 4, 128),
            nn.ReLU(),
            nn.Linear(128, NUM_CLASSES),
        ),
    )


FACTORIES: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "cnn": cnn}


class NamedIO(nn.Module):
    """``model`` called as ``forward(input=...)`` returning ``{"logits": ...}``.

    Converting this to TFLite names the signature's tensors ``input`` and ``logits``, like
    the ONNX export. It lives here, at module level, because converters embed the module's
    qualified name in the file: a stable name keeps the build byte-for-byte reproducible.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.inner(input)}
