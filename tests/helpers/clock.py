"""FakeClock: a Clock for the resilience layers that only moves when slept on."""

from __future__ import annotations

from dataclasses import dataclass, field

from aigw.gateway import Clock


@dataclass
class FakeClock(Clock):
    """A clock that only moves when slept on; records every wait."""

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
