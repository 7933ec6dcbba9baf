"""Clock: the wall time and the sleep the resilience layers use, injectable for tests.

Wall time (not a monotonic clock) because breaker, rate-limit and cache state is shared
with other aigw processes through the local store, and only wall time means the same there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Clock:
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass
class FakeClock(Clock):
    """A clock that only moves when slept on; records every wait (tests, benchmarks)."""

    start: float = 1_700_000_000.0
    waits: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.current = self.start
        self.now = lambda: self.current
        self.sleep = self._sleep

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.current += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Move the time on without sleeping."""
        self.current += seconds
