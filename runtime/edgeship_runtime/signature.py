"""A model's input/output signature as read from the model file itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Tuple, Union

Dim = Union[int, str, None]
"""A dimension: a fixed size, a symbolic name (``"batch"``), or ``None`` for unknown."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, shape (dynamic dims symbolic or None) and numpy dtype."""

    name: str
    shape: Tuple[Dim, ...]
    dtype: str

    @property
    def is_dynamic(self) -> bool:
        return any(not isinstance(d, int) or d < 0 for d in self.shape)

    def shape_text(self) -> str:
        return format_shape(self.shape)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict) -> TensorSpec:
        return cls(str(data["name"]), tuple(data["shape"]), str(data["dtype"]))


@dataclass(frozen=True)
class Signature:
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]

    def input(self, name: str) -> Optional[TensorSpec]:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def to_dict(self) -> dict:
        return {
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Signature:
        return cls(
            tuple(TensorSpec.from_dict(s) for s in data["inputs"]),
            tuple(TensorSpec.from_dict(s) for s in data["outputs"]),
        )


def dims_compatible(expected: Tuple[Dim, ...], given: Tuple[int, ...]) -> bool:
    """True when ``given`` fits ``expected``: same rank, and every fixed dim equal."""
    if len(expected) != len(given):
        return False
    return all(not isinstance(e, int) or e < 0 or e == g for e, g in zip(expected, given))


def format_shape(shape: Sequence[Dim]) -> str:
    """``[batch, 1, 8, 8]``: how shapes appear in messages; unknown dims print as ``?``."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def format_dims(shape: Sequence[int]) -> str:
    """``1×1×8×8``: a concrete shape as the human tables show it (``scalar`` for 0-d)."""
    return "×".join(str(d) for d in shape) or "scalar"
