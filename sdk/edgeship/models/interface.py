"""A model's interface against its base's: every input and output whose dtype or shape changed.

A quantizer that turns a model's float32 input into int8 breaks every caller that feeds
it images, yet every fidelity figure holds (the evaluation quantizes for it). So a change
of the interface is never silent: :func:`interface_changes` lists each one, and a report
prints each on a line of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgeship_runtime.signature import Signature, TensorSpec, format_dims

__all__ = ["InterfaceChange", "interface_changes"]


@dataclass(frozen=True)
class InterfaceChange:
    """An ``input`` or ``output`` (``role``) of the base, by name, as it was and as it is
    (``after_dtype`` "" and ``after_shape`` empty: it is gone)."""

    role: str
    name: str
    before_dtype: str
    before_shape: list[Any]
    after_dtype: str
    after_shape: list[Any]

    def __str__(self) -> str:
        before = f"{self.before_dtype} {format_dims(self.before_shape)}"
        if not self.after_dtype:
            return f"{self.role} {self.name!r} ({before}) is gone"
        after = f"{self.after_dtype} {format_dims(self.after_shape)}"
        return f"{self.role} {self.name!r} changed: {before} → {after}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InterfaceChange:
        return cls(
            str(data["role"]),
            str(data["name"]),
            str(data["before_dtype"]),
            list(data["before_shape"]),
            str(data["after_dtype"]),
            list(data["after_shape"]),
        )


def interface_changes(base: Signature, new: Signature) -> list[InterfaceChange]:
    """Each input and output of ``base`` whose dtype or shape differs in ``new`` (matched by
    name, else by position: a converter may rename them)."""
    return [
        change
        for role, before, after in (
            ("input", base.inputs, new.inputs),
            ("output", base.outputs, new.outputs),
        )
        for change in _changes(role, before, after)
    ]


def _changes(
    role: str, before: tuple[TensorSpec, ...], after: tuple[TensorSpec, ...]
) -> list[InterfaceChange]:
    by_name = {s.name: s for s in after}
    same_names = set(by_name) == {s.name for s in before}
    found = []
    for i, spec in enumerate(before):
        now = by_name.get(spec.name) if same_names else (after[i] if i < len(after) else None)
        if now is not None and now.dtype == spec.dtype and list(now.shape) == list(spec.shape):
            continue
        found.append(
            InterfaceChange(
                role,
                spec.name,
                spec.dtype,
                list(spec.shape),
                "" if now is None else now.dtype,
                [] if now is None else list(now.shape),
            )
        )
    return found
