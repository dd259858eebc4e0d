"""Run one operation on many targets at once; one device failing never stops the others.

Like fabric's ``GroupResult``: every device gets a result or an error, and the caller
decides what a partial failure means (the CLI exits non-zero).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import EdgeshipError, UsageError
from .targets import Target

T = TypeVar("T")


@dataclass
class DeviceResult(Generic[T]):
    target: str
    value: T | None = None
    error: EdgeshipError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def error_dict(self) -> dict[str, Any] | None:
        if self.error is None:
            return None
        return {"type": type(self.error).__name__, "message": str(self.error)}


def run_each(
    targets: Sequence[Target], operation: Callable[[Target], T], parallel: int = 8
) -> list[DeviceResult[T]]:
    """``operation(target)`` on every target, at most ``parallel`` at a time; closes each.

    Expected failures (:class:`EdgeshipError`) are recorded per device; a bug still raises.
    """
    if parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {parallel}")

    def one(target: Target) -> DeviceResult[T]:
        try:
            with target:
                return DeviceResult(target.name, value=operation(target))
        except EdgeshipError as exc:
            return DeviceResult(target.name, error=exc)

    with ThreadPoolExecutor(max_workers=min(parallel, len(targets)) or 1) as pool:
        return list(pool.map(one, targets))
