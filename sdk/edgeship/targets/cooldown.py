"""Waiting for a device to cool down before timing (``--cooldown TEMP_C``).

The host polls the runtime's ``conditions`` op, so the wait looks the same on every
target and the user sees its progress here; the runtime itself never sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeship.core.errors import UsageError
from edgeship_runtime.report import Cooldown

if TYPE_CHECKING:
    from edgeship.targets.base import Target

__all__ = ["CooldownPolicy", "CooldownProgress", "wait_cool"]

CooldownProgress = Callable[[float, float, "CooldownPolicy"], None]
"""Called after each reading with (hottest zone °C, seconds waited so far, policy)."""


@dataclass(frozen=True)
class CooldownPolicy:
    """Wait until the hottest thermal zone is below ``below_c`` °C, reading it every
    ``poll_s`` seconds, for at most ``timeout_s`` seconds."""

    below_c: float
    timeout_s: float = 300.0
    poll_s: float = 2.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise UsageError(f"cooldown timeout must be positive, got {self.timeout_s}")
        if self.poll_s <= 0:
            raise UsageError(f"cooldown poll interval must be positive, got {self.poll_s}")


def wait_cool(
    target: Target,
    policy: CooldownPolicy,
    progress: CooldownProgress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Cooldown:
    """Poll ``target`` until it is cool enough or the timeout has passed; what happened.

    A device with no readable thermal zone is not waited for (``reached`` None).
    """
    started = time.monotonic()
    first = current = target.conditions().temperature_c
    while current is not None and current >= policy.below_c:
        waited = time.monotonic() - started
        if progress is not None:
            progress(current, waited, policy)
        if waited >= policy.timeout_s:
            break
        sleep(min(policy.poll_s, max(policy.timeout_s - waited, 0.0)))
        current = target.conditions().temperature_c
    return Cooldown(
        below_c=policy.below_c,
        timeout_s=policy.timeout_s,
        waited_s=time.monotonic() - started,
        start_c=first,
        end_c=current,
        reached=None if current is None else current < policy.below_c,
    )
