"""The gateway server's view of the shared state: the local SQLite state awaited in place, or
Redis with a fall-back to the local state while it does not answer.

`AsyncLocal` lets the event loop use SQLiteState as it did before (each call is one short
local transaction, cheaper than a hop to a thread).
"""

from __future__ import annotations

from aigw.common.state import BreakerRow, BreakerRule, CacheEntry, Gcra
from aigw.storage.state import SQLiteState


class AsyncLocal:
    """SQLiteState behind the async interface: shared by the workers of one machine."""

    mode = "local"

    def __init__(self, local: SQLiteState):
        self.local = local

    async def cache_get(self, key: str) -> CacheEntry | None:
        return self.local.cache_get(key)

    async def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        self.local.cache_put(entry, keep_for=keep_for)

    async def cache_drop(self, tags: list[str]) -> int:
        return self.local.cache_drop(tags)

    async def rate_take(self, name: str, rule: Gcra, now: float, *, reserve: bool) -> float:
        return self.local.rate_take(name, rule, now, reserve=reserve)

    async def rate_pause(self, name: str, until: float, now: float) -> None:
        self.local.rate_pause(name, until, now)

    async def breaker_get(self, host: str) -> BreakerRow | None:
        return self.local.breaker_get(host)

    async def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        return self.local.breaker_claim(host, now, rule)

    async def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        self.local.breaker_record(host, now, rule, failure=failure, error=error)

    async def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        return self.local.remembered_key(scope)

    async def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        self.local.remember_key(scope, fingerprint, announced=announced)

    async def close(self) -> None:
        """The local state is closed by its owner (the runtime)."""
